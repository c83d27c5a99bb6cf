"""The email channel: SMTP and IMAP in, SMTP out, threaded, loop-safe."""

from channels.email.authentication import AuthenticationSettings
from channels.email.channel import EmailChannel, EmailSettings, RelaySettings
from channels.email.imap import ImapPoller, ImapSettings
from channels.email.parse import ParsedMail, parse_mail
from channels.email.quotes import strip_reply
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
    "normalise_subject",
    "parse_mail",
    "strip_reply",
]
