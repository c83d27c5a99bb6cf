"""Mail no person wrote: bounces, receipts, auto-replies, lists, no-reply senders.
Kept and shown, never answered (no loops with auto-responders)."""

from __future__ import annotations

import re
from email.message import Message

from channels.email.headers import raw_header

__all__ = ["auto_reason", "envelope_auto_reason"]

_ANGLE_ADDR = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+?)\s*>")
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


def auto_reason(msg: Message, sender: str | None, subject: str) -> str | None:
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
    auto_submitted = (raw_header(msg, "Auto-Submitted") or "").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return "auto-reply" if "replied" in auto_submitted else "auto-generated"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if raw_header(msg, name) is not None:
            return "auto-reply"
    precedence = (raw_header(msg, "Precedence") or "").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence {precedence}"
    if raw_header(msg, "List-Id") is not None or raw_header(msg, "List-Unsubscribe") is not None:
        return "mailing list"
    if raw_header(msg, "Feedback-ID") is not None and raw_header(msg, "Return-Path") == "<>":
        return "auto-generated"
    if sender:
        local = sender.split("@", 1)[0]
        if _NOREPLY_LOCAL.match(local):
            return f"sender {local}"
    return_path = raw_header(msg, "Return-Path")
    if return_path is not None:
        reason = envelope_auto_reason(return_path)
        if reason is not None:
            return reason
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply"
    return None


def envelope_auto_reason(envelope_from: str | None) -> str | None:
    """Why a mail with this envelope sender (``Return-Path``, SMTP ``MAIL FROM``) is
    machine-made: the null sender of bounces, or a no-reply mailbox. None: a person."""
    if envelope_from is None:
        return None
    value = envelope_from.strip()
    if value in ("<>", ""):
        return "null sender"
    match = _ANGLE_ADDR.search(value)
    address = match.group(1) if match else value.strip("<> ")
    local = address.split("@", 1)[0].lower()
    # VERP and SRS wrap the real local part: bounces+tag=...@, SRS0=...=local@...
    if _NOREPLY_LOCAL.match(local) or _NOREPLY_LOCAL.match(local.split("+", 1)[0]):
        return f"envelope sender {local.split('+', 1)[0][:40]}"
    return None
