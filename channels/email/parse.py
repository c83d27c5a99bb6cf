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
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser

from channels.email.charsets import decode_bytes, decode_header_value
from channels.email.html import html_to_text
from channels.email.quotes import strip_reply

__all__ = ["MailAttachment", "ParsedMail", "message_ids", "parse_mail"]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_NOREPLY_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|noreply[-.\w]*|bounces?|"
    r"bounce[-+.\w]*|mail-daemon|listserv|majordomo)$",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?\s*(reply|response)|out of (the )?office|autoreply|"
    r"自动回复|自動回覆|自动答复|休假回复|undeliverable|undelivered mail|"
    r"delivery status notification|mail delivery failed|returned mail|系统退信|退信)",
    re.IGNORECASE,
)


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


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ``<id>`` tokens in a Message-ID / In-Reply-To / References value, bare."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip().strip("<>")]  # clients that drop the angle brackets
    return tuple(dict.fromkeys(i for i in found if "@" in i or len(i) > 8))


def _header(msg: Message, name: str, fallback: str | None = None) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return decode_header_value(str(value), fallback)
    return None


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return re.sub(r"\r?\n[ \t]", " ", str(value)).strip()
    return None


def _addresses(msg: Message, name: str, fallback: str | None = None) -> list[tuple[str, str]]:
    values = [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    pairs = email.utils.getaddresses([re.sub(r"\r?\n[ \t]", " ", v) for v in values])
    return [(decode_header_value(n, fallback), a.strip().lower()) for n, a in pairs if "@" in a]


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


def _auto_reason(msg: Message, sender: str | None, subject: str) -> str | None:
    content_type = msg.get_content_type()
    if content_type == "message/delivery-status":
        return "bounce"
    if content_type == "message/disposition-notification":
        return "receipt"
    if content_type == "multipart/report":
        report = str(msg.get_param("report-type") or "").lower()
        return {
            "delivery-status": "bounce",
            "feedback-report": "complaint",
            "disposition-notification": "receipt",
        }.get(str(report), "report")
    auto_submitted = (_raw_header(msg, "Auto-Submitted") or "").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return "auto-reply" if "replied" in auto_submitted else "auto-generated"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if _raw_header(msg, name) is not None:
            return "auto-reply"
    precedence = (_raw_header(msg, "Precedence") or "").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence {precedence}"
    if _raw_header(msg, "List-Id") is not None or _raw_header(msg, "List-Unsubscribe") is not None:
        return "mailing list"
    if _raw_header(msg, "Feedback-ID") is not None and _raw_header(msg, "Return-Path") == "<>":
        return "auto-generated"
    if sender:
        local = sender.split("@", 1)[0]
        if _NOREPLY_LOCAL.match(local):
            return f"sender {local}"
    elif _raw_header(msg, "Return-Path") == "<>":
        return "null sender"
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply"
    return None


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


def _walk(msg: Message, problems: list[str]) -> tuple[list[str], list[str], list[MailAttachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[MailAttachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
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
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    problems: list[str] = [type(d).__name__ for d in msg.defects][:10]
    charset = _body_charset(msg)
    senders = _addresses(msg, "From", charset) or _addresses(msg, "Sender", charset)
    from_name, from_address = senders[0] if senders else (None, None)
    reply_to = _addresses(msg, "Reply-To")
    subject = _header(msg, "Subject", charset) or ""
    own_id = message_ids(_raw_header(msg, "Message-ID"))
    sent_at: datetime | None = None
    if date := _raw_header(msg, "Date"):
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
    auto = _auto_reason(msg, from_address, subject)
    about = _about(msg, full_text) if auto else ()
    return ParsedMail(
        message_id=own_id[0] if own_id else _synthetic_id(raw),
        from_address=(reply_to[0][1] if reply_to and not from_address else from_address),
        from_name=from_name or None,
        to=tuple(a for _, a in _addresses(msg, "To") + _addresses(msg, "Cc")),
        subject=subject,
        sent_at=sent_at,
        in_reply_to=message_ids(_raw_header(msg, "In-Reply-To")),
        references=message_ids(_raw_header(msg, "References")),
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
            if k.lower() in ("x-relaydesk-conversation", "auto-submitted", "x-mailer", "user-agent")
        ),
    )
