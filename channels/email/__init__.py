"""The email channel: SMTP and IMAP in, SMTP out, threaded, loop-safe."""

from typing import TYPE_CHECKING

from channels.lazy import lazily

if TYPE_CHECKING:
    from channels.email.channel import EmailChannel
    from channels.email.imap import ImapPoller
    from channels.email.parse import ParsedMail, parse_mail
    from channels.email.quotes import strip_reply
    from channels.email.settings import (
        AuthenticationSettings,
        EmailSettings,
        ImapSettings,
        RelaySettings,
        SmtpReceiverSettings,
    )
    from channels.email.smtp import SmtpReceiver
    from channels.email.threading import normalise_subject

__all__ = [
    "AuthenticationSettings",
    "EmailChannel",
    "EmailSettings",
    "ImapPoller",
    "ImapSettings",
    "ParsedMail",
    "RelaySettings",
    "SmtpReceiver",
    "SmtpReceiverSettings",
    "normalise_subject",
    "parse_mail",
    "strip_reply",
]

__getattr__ = lazily(
    __name__,
    {
        "AuthenticationSettings": "settings",
        "EmailChannel": "channel",
        "EmailSettings": "settings",
        "ImapPoller": "imap",
        "ImapSettings": "settings",
        "ParsedMail": "parse",
        "RelaySettings": "settings",
        "SmtpReceiver": "smtp",
        "SmtpReceiverSettings": "settings",
        "normalise_subject": "threading",
        "parse_mail": "parse",
        "strip_reply": "quotes",
    },
)
