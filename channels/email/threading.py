"""Threading by subject and ticket number, and the Message-IDs we mint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata

__all__ = ["is_ours", "normalise_subject", "our_message_id", "reply_subject", "ticket_in"]

# Reply and forward prefixes in the languages our customers' clients use, any
# number of times, with or without counters ("Re[2]:", "RE: AW: 回复：").
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|ref|回复|回覆|答复|答覆|转发|轉寄|转寄|回信)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_TICKET = re.compile(r"\[#(\d{1,12})\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_TAGS = re.compile(r"^\s*\[[^\]#]{1,40}\]\s*")  # mailing-list style "[shop]" tags


def ticket_in(subject: str) -> int | None:
    """The conversation number in a ``[#1234]`` token, if the subject has one."""
    match = _TICKET.search(subject)
    return int(match.group(1)) if match else None


def normalise_subject(subject: str) -> str:
    """The subject as a thread key: prefixes, ticket tokens, case and spacing dropped."""
    text = unicodedata.normalize("NFKC", subject)
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text)
        text = _TICKET.sub(" ", text)
        text = _TAGS.sub("", text)
    return " ".join(text.split()).casefold()


def reply_subject(subject: str | None, conversation_id: int, fallback: str) -> str:
    """``Re: <their subject> [#id]``: their client threads it, the token threads it back."""
    # Control characters (a NUL or CR LF from a hostile encoded-word) never reach a header.
    base = _CONTROL.sub(" ", subject or "").strip()
    base = _TICKET.sub(" ", base)
    previous = None
    while previous != base:
        previous = base
        base = _PREFIX.sub("", base).strip()
    base = " ".join(base.split()) or fallback
    return f"Re: {base} [#{conversation_id}]"


def our_message_id(domain: str, conversation_id: int, key: str, *, secret: bytes) -> str:
    """Stable across retries of one outbox row, so a resent mail is the same mail, and
    unguessable: keyed with the server secret, so nobody can name one of our mails
    in References without having received it."""
    mac = hmac.new(secret, f"{conversation_id}:{key}".encode(), hashlib.sha256).digest()
    token = base64.b32encode(mac[:20]).decode().rstrip("=").lower()
    return f"relaydesk.{token}@{domain}"


def is_ours(message_id: str, domain: str) -> bool:
    return message_id.startswith("relaydesk.") and message_id.endswith("@" + domain)
