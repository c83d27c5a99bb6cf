"""Our replies as MIME: plain text plus a simple HTML alternative, threaded."""

from __future__ import annotations

import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from channels.base import OutboundKind, OutboundMessage
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
    }
)
_CJK = re.compile(r"[\u3400-\u9fff]")
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
    outbound: OutboundMessage, *, sender: Address, domain: str, secret: bytes
) -> tuple[EmailMessage, str]:
    """The mail for ``outbound`` and its Message-ID (without angle brackets)."""
    language = _language(outbound.text)
    message_id = our_message_id(
        domain, outbound.conversation_id, outbound.idempotency_key, secret=secret
    )
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = outbound.address.recipient_id
    mail["Subject"] = reply_subject(
        outbound.subject, outbound.conversation_id, _FALLBACK_SUBJECT[language]
    )
    mail["Date"] = format_datetime(outbound.created_at)
    mail["Message-ID"] = f"<{message_id}>"
    if outbound.address.thread_id:
        mail["In-Reply-To"] = f"<{outbound.address.thread_id}>"
        mail["References"] = f"<{outbound.address.thread_id}>"
    if outbound.kind in AUTOMATIC_KINDS:
        mail["Auto-Submitted"] = "auto-replied"
        # Exchange and Outlook: no out-of-office or read receipts back to an automatic reply.
        mail["X-Auto-Response-Suppress"] = "All"
    mail["X-RelayDesk-Conversation"] = str(outbound.conversation_id)
    body = _body(outbound)
    mail.set_content(body, charset="utf-8")
    mail.add_alternative(_html(body), subtype="html", charset="utf-8")
    return mail, message_id
