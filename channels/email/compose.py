"""Our replies as MIME: plain text plus a simple HTML alternative, threaded."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from email import encoders
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr

from channels.base import OutboundAttachment, OutboundKind, OutboundMessage
from channels.email.threading import our_message_id, reply_subject

__all__ = ["AUTOMATIC_KINDS", "compose_reply"]

# Everything but a person's reply is an automatic reply in the sense of RFC 3834.
AUTOMATIC_KINDS = frozenset(
    {
        OutboundKind.ANSWER,
        OutboundKind.CLARIFY,
        OutboundKind.ACK,
        OutboundKind.SURVEY,
        OutboundKind.SYSTEM,
        OutboundKind.FOLLOW_UP,
    }
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_FOOTER = {
    "zh": "这是自动回复。如果没有解决您的问题，直接回复本邮件即可联系人工客服。",
    "en": "This is an automatic answer. If it does not solve your problem, reply to this "
    "email and a person from our team will answer.",
}
_FALLBACK_SUBJECT = {"zh": "您的咨询", "en": "Your request"}


def _language(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def _body(outbound: OutboundMessage) -> str:
    parts = [outbound.text.strip()] if outbound.text.strip() else []
    if outbound.choices:
        parts.append("\n".join(f"{i}. {c.label}" for i, c in enumerate(outbound.choices, 1)))
    if outbound.kind in (OutboundKind.ANSWER, OutboundKind.CLARIFY):
        parts.append("-- \n" + _FOOTER[_language(outbound.text)])
    return "\n\n".join(parts) + "\n"


def _html(text: str) -> str:
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    rendered = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif;line-height:1.5">{rendered}</body></html>'
    )


def compose_reply(
    outbound: OutboundMessage,
    *,
    sender: Address,
    domain: str,
    secret: bytes,
    files: Sequence[bytes] = (),
) -> tuple[Message, str]:
    """The mail for ``outbound`` and its Message-ID (without angle brackets); ``files``
    are the bytes of ``outbound.attachments``, in order, attached after the text.

    Built with the ``email`` package's compat32 classes and headers encoded here:
    the default policy parses every header it is given back into objects, which
    cost a third of a reply's time and bought nothing.
    """
    language = _language(outbound.text)
    message_id = our_message_id(
        domain, outbound.conversation_id, outbound.idempotency_key, secret=secret
    )
    subject = reply_subject(outbound.subject, outbound.conversation_id, _FALLBACK_SUBJECT[language])
    headers = [
        ("To", outbound.address.recipient_id),
        ("Subject", subject),
        ("Date", format_datetime(outbound.created_at)),
        ("Message-ID", f"<{message_id}>"),
    ]
    if outbound.address.thread_id:
        headers += [
            ("In-Reply-To", f"<{outbound.address.thread_id}>"),
            ("References", f"<{outbound.address.thread_id}>"),
        ]
    if outbound.kind in AUTOMATIC_KINDS:
        # RFC 3834; and for Exchange and Outlook: no out-of-office or read receipts back.
        headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
    headers.append(("X-RelayDesk-Conversation", str(outbound.conversation_id)))
    body = _body(outbound)
    if not outbound.address.recipient_id.isascii():
        # An internationalised address (RFC 6531) must go out as UTF-8, which only the
        # modern policy writes (the relay is asked for SMTPUTF8). Rare, and slower.
        modern = EmailMessage()
        modern["From"] = sender
        for name, value in headers:
            modern[name] = value
        modern.set_content(body, charset="utf-8")
        modern.add_alternative(_html(body), subtype="html", charset="utf-8")
        for attachment, data in zip(outbound.attachments, files, strict=True):
            maintype, _, subtype = _mime_type(attachment.content_type).partition("/")
            modern.add_attachment(
                data, maintype=maintype, subtype=subtype, filename=attachment.name
            )
        return modern, message_id
    text = MIMEMultipart("alternative")
    text.attach(MIMEText(body, "plain", "utf-8"))
    text.attach(MIMEText(_html(body), "html", "utf-8"))
    mail: Message = text
    if outbound.attachments:
        mail = MIMEMultipart("mixed")
        mail.attach(text)
        for attachment, data in zip(outbound.attachments, files, strict=True):
            mail.attach(_attached(attachment, data))
    mail["From"] = formataddr((sender.display_name, sender.addr_spec), charset="utf-8")
    for name, value in headers:
        mail[name] = value if value.isascii() else Header(value, "utf-8").encode()
    return mail, message_id


def _mime_type(content_type: str) -> str:
    """A type fit for a MIME header, else a plain download."""
    return content_type if _MIME_TYPE.fullmatch(content_type) else "application/octet-stream"


def _attached(attachment: OutboundAttachment, data: bytes) -> MIMEBase:
    """One file as a base64 part; a name outside ASCII in RFC 2231 form."""
    maintype, _, subtype = _mime_type(attachment.content_type).partition("/")
    part = MIMEBase(maintype, subtype)
    part.set_payload(data)
    encoders.encode_base64(part)
    name = attachment.name
    if name.isascii():
        part.add_header("Content-Disposition", "attachment", filename=name)
    else:
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    return part
