"""Mail whose MIME structure is broken, read as well as it can be.

Real mail breaks in a few recurring ways: a multipart whose parts are separated
by another boundary than the one declared (or none declared at all), and a text
part in base64 that does not say so. The parser then hands over the raw MIME
or the base64 as "text", and a person reads ``Content-Type: text/plain…``
instead of the customer's words. These functions find the structure the body
actually has; the mail as it came is kept beside it either way.
"""

from __future__ import annotations

import base64
import binascii
import re
from email import message_from_string, policy
from email.message import Message

__all__ = ["hidden_base64", "resplit_multipart", "salvaged_base64"]

# A line that opens or closes a part: "--" and a boundary (RFC 2046: at most 70
# characters, but real mail is sloppier), nothing else on the line.
_BOUNDARY_LINE = re.compile(r"^--([^\s\"\\]{1,200}?)(?:--)?[ \t]*\r?$", re.M)
# A body that begins with part headers of its own.
_PART_HEADERS = re.compile(r"\A\s*content-(?:type|transfer-encoding|disposition)\s*:", re.I)
_BASE64_BODY = re.compile(r"\A[A-Za-z0-9+/]{16,}={0,2}\Z")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
_BASE64_DEFECTS = (
    "InvalidBase64CharactersDefect",
    "InvalidBase64LengthDefect",
    "InvalidBase64PaddingDefect",
)


def resplit_multipart(part: Message) -> Message | None:
    """``part``, a multipart the parser could not split, split at the boundary its
    body uses; or its body read as one part with headers of its own; None when
    neither gives any structure."""
    body = part.get_payload()
    if not isinstance(body, str) or not body.strip():
        return None
    match = _BOUNDARY_LINE.search(body)
    if match is not None:
        rebuilt = f'Content-Type: {part.get_content_type()}; boundary="{match.group(1)}"\n\n'
        found = message_from_string(rebuilt + body, policy=policy.compat32)
        if found.is_multipart() and found.get_payload():
            return found
    if _PART_HEADERS.match(body):
        return message_from_string(body.lstrip(), policy=policy.compat32)
    return None


def hidden_base64(part: Message, payload: bytes) -> bytes | None:
    """The decoded bytes of a text part that is base64 but was not declared so (no
    Content-Transfer-Encoding), when it decodes to UTF-8 text; None otherwise."""
    declared = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if declared not in ("", "7bit", "8bit"):
        return None
    compact = b"".join(payload.split())
    if len(compact) % 4 or not _BASE64_BODY.match(compact.decode("ascii", "replace")):
        return None
    try:
        data = base64.b64decode(compact, validate=True)
        text = data.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if any(c < " " and c not in "\t\r\n" for c in text):
        return None
    return data


def salvaged_base64(part: Message) -> bytes | None:
    """A part declared base64 that the parser gave up on (stray characters, a line cut
    short): decoded line by line, a line holding other characters dropped whole (each
    line of base64 stands alone, so the rest still decodes). None when the part
    decoded cleanly, or when what is left is not text in its charset."""
    declared = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if declared != "base64" or not any(type(d).__name__ in _BASE64_DEFECTS for d in part.defects):
        return None
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    out = bytearray()
    for line in body.splitlines():
        quanta = line.strip().rstrip("=")
        if quanta and not _NOT_BASE64.search(quanta):
            out += base64.b64decode(quanta[: len(quanta) // 4 * 4])
    try:
        out.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return None
    return bytes(out) or None
