"""HTML mail to plain text, without the quoted history when asked.

Standard library only: a tolerant ``HTMLParser`` that keeps the words and
the paragraph breaks, drops scripts, styles and comments, and can skip the
containers mail clients put the previous messages in (Gmail's
``gmail_quote``, Outlook's ``divRplyFwdMsg``, Foxmail's and Apple Mail's
``blockquote``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_QUOTE_CLASSES = ("gmail_quote", "gmail_extra", "yahoo_quoted", "moz-cite-prefix", "ms-outlook")
_QUOTE_IDS = (
    "divrplyfwdmsg",
    "appendonsend",
    "foxmailquote",
    "isforwardcontent",
    "mailcontent-quote",
)


class _TextExtractor(HTMLParser):
    def __init__(self, *, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self._drop_quotes = drop_quotes
        self._parts: list[str] = []
        self._skip_depth = 0  # inside script/style/quoted history
        self._stack: list[tuple[str, bool]] = []
        # Outlook puts the quoted history after a marker element rather than inside one.
        self._cut = False

    def _is_quote(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if not self._drop_quotes:
            return False
        if tag == "blockquote":
            return True
        values = {name: (value or "").lower() for name, value in attrs}
        classes = values.get("class", "")
        ident = values.get("id", "")
        return any(c in classes for c in _QUOTE_CLASSES) or any(i in ident for i in _QUOTE_IDS)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._cut:
            return
        if tag in _VOID:
            self._void(tag)
            return
        skip = tag in _SKIPPED or self._is_quote(tag, attrs)
        if skip:
            if self._drop_quotes and tag == "div" and self._skip_depth == 0:
                ident = dict(attrs).get("id") or ""
                if ident.lower() in ("divrplyfwdmsg", "appendonsend"):
                    self._cut = True
                    return
            self._skip_depth += 1
        self._stack.append((tag, skip))
        if tag in _BLOCKS and not self._skip_depth:
            self._parts.append("\n")
        if tag == "li" and not self._skip_depth:
            self._parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self._void(tag)
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def _void(self, tag: str) -> None:
        if self._skip_depth or self._cut:
            return
        if tag == "br" or tag == "hr":
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._cut or tag in _VOID:
            return
        # Close up to the matching open tag; stray end tags are ignored.
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                for _, skipped in self._stack[index:]:
                    if skipped:
                        self._skip_depth -= 1
                del self._stack[index:]
                break
        else:
            return
        if tag in _BLOCKS and not self._skip_depth:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth or self._cut:
            return
        self._parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        raw = "".join(self._parts).replace("\xa0", " ")
        lines = [line.strip() for line in raw.split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """The readable text of ``html``; with ``drop_quotes`` the quoted history is left out."""
    parser = _TextExtractor(drop_quotes=drop_quotes)
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        pass  # what was read so far is still the best we have
    return parser.text()
