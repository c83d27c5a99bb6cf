"""Logging for the service: one event per line, and never a secret in it.

Libraries log what they see: httpx (under python-telegram-bot) writes every
request URL at INFO, and a Bot API URL carries the bot token. Such loggers are
kept to warnings, and every line, tracebacks included, passes a formatter that
blanks the configured secrets and anything shaped like a bot token or a bearer
credential, whoever logged it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from router.config import Config

__all__ = ["RedactingFormatter", "config_secrets", "configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
# Loggers that print request URLs or headers at INFO.
# Alembic says what it would do on every start (``Database.upgrade`` says what it did);
# aiosmtpd ("mail.log") says "Connection lost during _handle_client()" for every mail
# whose sender hangs up without QUIT.
_CHATTY = (
    "httpx",
    "httpcore",
    "telegram.ext",
    "aiosmtplib",
    "aioimaplib",
    "hpack",
    "alembic",
    "mail.log",
)
_SHAPES = (
    re.compile(r"\b\d{5,12}:[A-Za-z0-9_-]{30,}\b"),  # a Telegram bot token
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(?i)((?:secret|token|password|passwd|access_token)=)[^&\s\"']{6,}"),
)


class RedactingFormatter(logging.Formatter):
    """A formatter that blanks ``secrets`` and secret-shaped text in the whole line."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is blanked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for shape in _SHAPES:
            text = shape.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


def config_secrets(config: Config) -> list[str]:
    """Every secret the configuration holds."""
    channels = config.channels
    found = [
        config.server.secret_key,
        channels.telegram.token,
        channels.telegram.webhook_secret,
        channels.email.relay.password,
        *(account.password for account in channels.email.imap),
        *(bridge.secret for bridge in channels.api.values()),
        channels.wechat.app_secret,
        channels.wechat.token,
        channels.wechat.encoding_aes_key,
        channels.wecom_kf.secret,
        channels.wecom_kf.token,
        channels.wecom_kf.encoding_aes_key,
    ]
    if ":" in channels.telegram.token:
        # The part after the bot id is the secret part; the id alone is public.
        found.append(channels.telegram.token.split(":", 1)[1])
    return [s for s in found if s]


def configure_logging(secrets: Iterable[str] = (), *, level: int = logging.INFO) -> None:
    """Root handler on stderr with the redacting formatter; chatty libraries at WARNING."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    formatter = RedactingFormatter(FORMAT, secrets)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
