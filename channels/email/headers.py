"""A mail's headers read defensively: Message-IDs, addresses, text without control
characters, whatever the sender's software wrote."""

from __future__ import annotations

import email.utils
import hashlib
import re
from email.message import Message

from channels.base import encodable
from channels.email.charsets import decode_bytes, decode_header_value

__all__ = [
    "addresses",
    "bounded_id",
    "clean_header_text",
    "header",
    "mailbox",
    "message_ids",
    "raw_header",
    "unescape",
]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')

_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")

_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+?)\s*>")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ``<id>`` tokens in a Message-ID / In-Reply-To / References value, bare."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip().strip("<>")]  # clients that drop the angle brackets
    return tuple(
        dict.fromkeys(
            bounded_id(i)
            for i in found
            if ("@" in i or len(i) > 8) and _CONTROL.search(i) is None and encodable(i)
        )
    )


def bounded_id(message_id: str) -> str:
    """Ids are stored in 320 characters: a longer one is kept as its digest."""
    if len(message_id) <= 250:
        return message_id
    return f"sha256-{hashlib.sha256(message_id.encode()).hexdigest()[:40]}@long-id.invalid"


def header(msg: Message, name: str, fallback: str | None = None) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return decode_header_value(str(value), fallback)
    return None


def unescape(value: str, fallback: str | None = None) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogate escapes) as text: UTF-8
    under SMTPUTF8 (RFC 6532), else the body's charset."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape")
        return decode_bytes(raw, fallback or "utf-8").text
    return value


def raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return unescape(re.sub(r"\r?\n[ \t]", " ", str(value)).strip())
    return None


def clean_header_text(text: str) -> str:
    """Header text safe to show and to copy into a header: control characters
    (NUL, CR, LF, ...) become one space, lone surrogates are replaced."""
    text = _CONTROL.sub(" ", text).strip()
    return text.encode("utf-8", "replace").decode("utf-8")


def mailbox(value: str, fallback: str | None) -> tuple[str, str] | None:
    """One mailbox's (display name, addr-spec).

    ``alice@example.com <bob@example.com>`` is bob: in a name-addr the address is
    the one in angle brackets, whatever the display name looks like (a forger's
    favourite). Quoted strings and comments are set aside before looking.
    """
    bare = _COMMENT.sub(" ", _QUOTED.sub('""', value))
    match = _ANGLE_ADDR.search(bare)
    if match is not None:
        address = match.group(1).strip().lower()
        quoted = _QUOTED.search(value)
        if quoted is not None and quoted.start() < value.find("<" + match.group(1)):
            name = quoted.group(0)[1:-1].replace('\\"', '"')
        else:
            name = bare[: match.start()].strip().strip('"')
        return clean_header_text(decode_header_value(name, fallback)), address
    pairs = email.utils.getaddresses([value])
    for name, address in pairs:
        if "@" in address:
            return clean_header_text(decode_header_value(name, fallback)), address.strip().lower()
    return None


def addresses(msg: Message, name: str, fallback: str | None = None) -> list[tuple[str, str]]:
    values = [
        unescape(re.sub(r"\r?\n[ \t]", " ", str(v)), fallback)
        for k, v in msg.raw_items()
        if k.lower() == name.lower()
    ]
    found: list[tuple[str, str]] = []
    for value in values:
        # Split into mailboxes at commas outside quotes, comments and angle brackets.
        depth, quoted, start = 0, False, 0
        pieces: list[str] = []
        for index, char in enumerate(value):
            if char == '"' and (index == 0 or value[index - 1] != "\\"):
                quoted = not quoted
            elif not quoted and char in "(<":
                depth += 1
            elif not quoted and char in ")>":
                depth = max(depth - 1, 0)
            elif char == "," and not quoted and depth == 0:
                pieces.append(value[start:index])
                start = index + 1
        pieces.append(value[start:])
        for piece in pieces:
            one = mailbox(piece, fallback)
            if one is not None and _CONTROL.search(one[1]) is None:
                found.append(one)
    return found
