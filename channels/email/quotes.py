"""What the customer wrote this time: quoted history and signatures removed.

Replies carry the whole thread below (or, rarely, above) the new text. We cut
at the first line that starts the quoted part in any of the forms the common
clients write — English and Chinese, Gmail, Outlook, Apple Mail, Foxmail,
QQ Mail, NetEase — and at the signature delimiter or a "sent from my phone"
line. If nothing is left (a customer who typed below the quote, say), the
whole text is kept: better the agent reads too much than nothing.
"""

from __future__ import annotations

import re

__all__ = ["strip_reply"]

# A line that, on its own, starts the quoted history.
_STARTS_QUOTE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^-{2,}\s*(original message|forwarded message)\s*-{2,}",
        r"^-{2,}\s*(原始邮件|原始郵件|转发邮件|轉寄郵件)\s*-{2,}",
        r"^-{2,}\s*(回复的原邮件|回覆的原郵件)\s*-{2,}",
        r"^_{10,}\s*$",  # Outlook's rule above "From: ... Sent: ..."
        r"^On\b.{0,300}\bwrote:\s*$",  # Gmail, Apple Mail, Thunderbird
        r"^Le\b.{0,300}\ba écrit\s*:\s*$",
        r"^Am\b.{0,300}\bschrieb\b.{0,200}:\s*$",
        r"^在\s*.{0,300}\s*(写道|寫道)\s*[:：]\s*$",  # Gmail, Apple Mail in Chinese
        r"^.{0,300}\s*(写道|寫道)\s*[:：]\s*$",  # Foxmail, QQ Mail: "… 张三 <a@b> 写道："
        r"^>?\s*(发件人|寄件者|發件人)\s*[:：]",  # Outlook, Foxmail, NetEase in Chinese
        r"^From:\s.+(\n|$)",  # checked with the lines after it, below
        r"^\*?From:\*?\s",
    )
]
# "From:" starts a quote only when the next lines are the rest of a header block.
_HEADER_FOLLOWS = re.compile(
    r"^\*?(sent|date|to|subject|cc|发送时间|時間|日期|收件人|主题|主旨)\*?\s*[:：]", re.IGNORECASE
)
# An attribution split over two lines: "On Mon, 1 Jan 2024, Li Wei <li@example.com>" / "wrote:".
_WROTE_ALONE = re.compile(r"^(wrote|写道|寫道)\s*[:：]\s*$", re.IGNORECASE)
_ON_START = re.compile(r"^(On|在)\s", re.IGNORECASE)
_SIGNATURE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^-- ?$",  # RFC 3676 signature delimiter
        r"^sent from my \w+",
        r"^get outlook for \w+",
        r"^(发自|發自|来自|來自)我的\s*\S+",
        r"^sent from (mail|yahoo mail|outlook) for \w+",
    )
]


def _is_header_block(lines: list[str], index: int) -> bool:
    following = [line for line in lines[index + 1 : index + 5] if line.strip()]
    return any(_HEADER_FOLLOWS.match(line.strip()) for line in following[:3])


def _quote_start(lines: list[str]) -> int | None:
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            # A block of ">" lines; its attribution, if any, is the line just above.
            above = index - 1
            while above >= 0 and not lines[above].strip():
                above -= 1
            if above >= 0 and re.search(r"(wrote|写道|寫道)\s*[:：]\s*$", lines[above].strip()):
                return above
            return index
        if _WROTE_ALONE.match(line) and index > 0 and _ON_START.match(lines[index - 1].strip()):
            return index - 1
        for pattern in _STARTS_QUOTE:
            if pattern.match(line):
                if line.lower().lstrip("*").startswith("from:") and not _is_header_block(
                    lines, index
                ):
                    break
                if pattern.pattern.startswith(r"^.{0,300}") and len(line) > 200:
                    break
                return index
    return None


def _signature_start(lines: list[str]) -> int | None:
    for index, raw in enumerate(lines):
        if any(p.match(raw.strip()) for p in _SIGNATURE):
            return index
    return None


def strip_reply(text: str) -> str:
    """``text`` without quoted history and signature; the whole text if that left nothing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = len(lines)
    quote = _quote_start(lines)
    if quote is not None:
        end = quote
    signature = _signature_start(lines[:end])
    if signature is not None:
        end = signature
    kept = "\n".join(lines[:end]).strip()
    if not kept and quote is not None:
        # Written below the quote (bottom posting): keep the lines that are not quoted.
        kept = _unquoted(lines[quote:])
    if not kept:
        return text.strip()
    return re.sub(r"\n{3,}", "\n\n", kept)


def _unquoted(lines: list[str]) -> str:
    kept = [
        line
        for index, line in enumerate(lines)
        if not line.lstrip().startswith(">")
        and not (index == 0 or re.search(r"(wrote|写道|寫道)\s*[:：]\s*$", line.strip()))
    ]
    signature = _signature_start(kept)
    return "\n".join(kept[:signature]).strip()
