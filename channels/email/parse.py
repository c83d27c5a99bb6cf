"""Raw RFC 5322 bytes → what the support desk needs to know of one mail.

Never raises: a mail the ``email`` package cannot make sense of comes back
with its raw bytes decoded as well as they can be and ``problems`` saying
why, so the channel stores it and flags it for a person instead of losing it.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser

from channels.email.automated import auto_reason, envelope_auto_reason
from channels.email.charsets import decode_bytes, decode_header_value
from channels.email.headers import (
    addresses,
    clean_header_text,
    header,
    message_ids,
    raw_header,
)
from channels.email.html import html_to_text
from channels.email.quotes import strip_reply
from channels.email.repair import hidden_base64, resplit_multipart, salvaged_base64

__all__ = [
    "MailAttachment",
    "ParsedMail",
    "clean_header_text",
    "envelope_auto_reason",
    "message_ids",
    "parse_mail",
]


@dataclass(frozen=True, slots=True)
class MailAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """One mail, decoded. ``text`` is what the sender wrote this time."""

    message_id: str
    from_address: str | None
    from_name: str | None
    # Where the sender asks replies to go (the first Reply-To mailbox), if anywhere.
    reply_to: tuple[str | None, str] | None
    to: tuple[str, ...]
    subject: str
    sent_at: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    full_text: str
    html: str | None
    attachments: tuple[MailAttachment, ...]
    # Why this mail is machine-made (never answered automatically), or None.
    auto: str | None
    # For a bounce or a report: the Message-IDs of the mail it is about.
    about: tuple[str, ...]
    problems: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def readable(self) -> bool:
        """Parsed well enough for the bot to act on."""
        return not any(p.startswith("unparseable") for p in self.problems)

    @property
    def fingerprint(self) -> str:
        """What a re-sent copy of this mail shares with it and another mail that reuses
        its Message-ID does not: sender, date, subject, text and attachments. Read from
        the decoded mail, so a copy re-encoded on its way (quoted-printable, base64)
        still matches."""
        digest = hashlib.sha256()
        sent = self.sent_at.isoformat() if self.sent_at else ""
        for value in (self.from_address or "", sent, self.subject, self.full_text):
            digest.update(value.encode("utf-8", "surrogatepass") + b"\0")
        for item in self.attachments:
            digest.update(hashlib.sha256(item.data).digest())
        return digest.hexdigest()[:32]


def _unreadable_reason(text: str) -> str | None:
    """Why ``text`` is not a person's writing but binary data shown as text (a forwarded
    Outlook .msg, an image pasted as a body), or None."""
    if len(text) < 64:
        return None
    sample = text[:20_000]
    bad = sum(
        1
        for char in sample
        if char == "\ufffd" or (char < " " and char not in "\t\n\r\f") or "\x7f" <= char < "\xa0"
    )
    if bad / len(sample) < 0.05:
        return None
    return (
        f"the body is binary data, not text ({len(text):,} characters, "
        f"{100 * bad / len(sample):.0f}% unreadable)"
    )


def _body_charset(msg: Message) -> str | None:
    for part in msg.walk():
        if part.get_content_maintype() == "text" and (charset := part.get_content_charset()):
            return charset
    return None


def _part_text(part: Message, problems: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    if (hidden := hidden_base64(part, payload)) is not None:
        problems.append("a text part in base64 without saying so: decoded")
        payload = hidden
    elif (salvaged := salvaged_base64(part)) is not None:
        problems.append("a broken base64 text part: decoded what could be")
        payload = salvaged
    decoded = decode_bytes(payload, part.get_content_charset())
    if decoded.problem:
        problems.append(decoded.problem)
    return decoded.text


def _filename(part: Message) -> str | None:
    raw = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if raw is None:
        return None
    if isinstance(raw, tuple):  # RFC 2231
        charset, _, value = raw
        data = value.encode("latin-1", "surrogateescape") if isinstance(value, str) else value
        return decode_bytes(data, charset or "utf-8").text
    return decode_header_value(str(raw))


def _about(msg: Message, body: str) -> tuple[str, ...]:
    """The Message-IDs of the original mail a bounce or report quotes."""
    found: list[str] = []
    for part in msg.walk():
        content_type = part.get_content_type()
        headers: object = None
        if content_type in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            headers = inner[0] if isinstance(inner, list) and inner else None
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                headers = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
        if isinstance(headers, Message):
            found.extend(message_ids(headers.get("Message-ID")))
    if not found:
        for match in re.finditer(r"^\s*Message-ID:\s*(<[^<>\s]+>)", body, re.I | re.M):
            found.extend(message_ids(match.group(1)))
    return tuple(dict.fromkeys(found))


def _raw_body(raw: bytes) -> str:
    """The bytes after the header block, for mail whose structure gave no text part."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in raw:
            body = raw.split(separator, 1)[1]
            return decode_bytes(body, None).text.strip()
    return ""


def _synthetic_id(raw: bytes) -> str:
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:40]}@relaydesk.invalid"


def _walk(
    msg: Message, problems: list[str], depth: int = 0
) -> tuple[list[str], list[str], list[MailAttachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[MailAttachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        if content_type.startswith("multipart/") and depth < 3:
            # A multipart the parser could not split: its raw MIME is no one's text.
            if (resplit := resplit_multipart(part)) is not None:
                problems.append("broken multipart structure: read at the boundary it uses")
                more = _walk(resplit, problems, depth + 1)
                plain += more[0]
                html += more[1]
                attachments += more[2]
            continue
        disposition = (part.get_content_disposition() or "").lower()
        name = _filename(part)
        is_body_text = content_type in ("text/plain", "text/html") and not (
            disposition == "attachment" or (name and disposition != "inline")
        )
        if is_body_text:
            (plain if content_type == "text/plain" else html).append(_part_text(part, problems))
            continue
        if content_type.startswith("multipart/") or content_type in (
            "message/delivery-status",
            "message/disposition-notification",
            "message/feedback-report",
            "text/rfc822-headers",
        ):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        attachments.append(
            MailAttachment(
                name=name or f"part-{len(attachments) + 1}",
                content_type=content_type,
                data=data,
            )
        )
    return plain, html, attachments


def parse_mail(raw: bytes) -> ParsedMail:
    """Everything we need from one mail; never raises (see the module docstring)."""
    try:
        return _parse(raw)
    except (RecursionError, Exception) as exc:  # the whole mail must survive any parser bug
        text = decode_bytes(raw, None).text
        return ParsedMail(
            message_id=_synthetic_id(raw),
            from_address=None,
            from_name=None,
            reply_to=None,
            to=(),
            subject="",
            sent_at=None,
            in_reply_to=(),
            references=(),
            text=text,
            full_text=text,
            html=None,
            attachments=(),
            auto=None,
            about=(),
            problems=(f"unparseable: {type(exc).__name__}: {exc}"[:300],),
        )


def _parse(raw: bytes) -> ParsedMail:
    # compat32 keeps headers as the raw strings we decode ourselves: the default
    # policy's header objects cost a third of a mail's intake and are never used.
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    problems: list[str] = [type(d).__name__ for d in msg.defects][:10]
    charset = _body_charset(msg)
    senders = addresses(msg, "From", charset) or addresses(msg, "Sender", charset)
    from_name, from_address = senders[0] if senders else (None, None)
    reply_to = addresses(msg, "Reply-To", charset)
    subject = clean_header_text(header(msg, "Subject", charset) or "")
    own_id = message_ids(raw_header(msg, "Message-ID"))
    sent_at: datetime | None = None
    if date := raw_header(msg, "Date"):
        try:
            sent_at = email.utils.parsedate_to_datetime(date)
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            problems.append("bad Date header")
    plain, html, attachments = _walk(msg, problems)
    html_text = "\n\n".join(h for h in html if h.strip()) or None
    full_text = "\n\n".join(p.strip() for p in plain if p.strip())
    if full_text:
        text = strip_reply(full_text)
    elif html_text:
        full_text = html_to_text(html_text)
        text = strip_reply(html_to_text(html_text, drop_quotes=True)) or full_text
    else:
        text = full_text = "" if attachments else _raw_body(raw)
    if (unreadable := _unreadable_reason(full_text)) is not None:
        # Kept whole in the stored original; a person opens it, the bot never reads it.
        problems.append(f"unparseable: {unreadable}")
        text = full_text = f"[{unreadable}]"
        html_text = None
    # A contact form mails from noreply@ with the customer in Reply-To: whether a
    # person wrote it is read from where the answer is to go.
    auto = auto_reason(msg, reply_to[0][1] if reply_to else from_address, subject)
    about = _about(msg, full_text) if auto else ()
    return ParsedMail(
        message_id=own_id[0] if own_id else _synthetic_id(raw),
        from_address=(reply_to[0][1] if reply_to and not from_address else from_address),
        from_name=from_name or None,
        reply_to=(reply_to[0][0] or None, reply_to[0][1]) if reply_to else None,
        to=tuple(a for _, a in addresses(msg, "To") + addresses(msg, "Cc")),
        subject=subject,
        sent_at=sent_at,
        in_reply_to=message_ids(raw_header(msg, "In-Reply-To")),
        references=message_ids(raw_header(msg, "References")),
        text=text,
        full_text=full_text,
        html=html_text,
        attachments=tuple(attachments),
        auto=auto,
        about=about,
        problems=tuple(dict.fromkeys(problems)),
        headers=tuple(
            (k, decode_header_value(str(v))[:500])
            for k, v in msg.raw_items()
            if k.lower()
            in (
                "x-relaydesk-conversation",
                "auto-submitted",
                "x-mailer",
                "user-agent",
                "authentication-results",
            )
        ),
    )
