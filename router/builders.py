"""From the configuration to the objects the service is made of.

Pure construction: settings objects, channels, the bot. Starting and stopping
them is the composition root's (``router.app``); the CLI uses the same builders.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime

from channels.api import ApiChannel
from channels.email import (
    EmailChannel,
    ImapPoller,
    SmtpReceiver,
)
from channels.http import ClientAddresses
from channels.telegram import TelegramChannel
from channels.webchat import RateLimits, VisitorStream, WebChatChannel
from channels.wechat import (
    CursorStore,
    OfficialAccountChannel,
    TokenStore,
    WeComKfChannel,
)
from router.config import Config
from router.delivery.retry import RetryPolicy
from router.desk.rules import ChannelRules
from router.desk.sla import SlaPolicies, policies_from

__all__ = [
    "build_api_channels",
    "build_email",
    "build_imap_pollers",
    "build_smtp_receiver",
    "build_telegram",
    "build_webchat",
    "build_wechat",
    "build_wecom_kf",
    "channel_rules",
    "load_secret",
    "retry_policy",
    "sla_policies",
    "utc_now",
]

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def sla_policies(config: Config) -> SlaPolicies:
    """The promises of config.yaml: calendars, policies in order, the default policy."""
    return policies_from(config.sla)


def retry_policy(config: Config) -> RetryPolicy:
    o = config.outbox
    return RetryPolicy(
        give_up_after=o.give_up_after_hours * 3600,
        max_attempts=o.max_attempts,
        backoff_base=o.backoff_base_seconds,
        backoff_max=o.backoff_max_seconds,
        lease=o.lease_seconds,
    )


def build_webchat(
    config: Config,
    *,
    secret: bytes,
    stream: VisitorStream,
    addresses: ClientAddresses,
    limits: RateLimits | None = None,
) -> WebChatChannel:
    return WebChatChannel(
        settings=config.channels.webchat,
        secret=secret,
        attachments_dir=config.server.attachments_dir,
        stream=stream,
        addresses=addresses,
        limits=limits,
    )


def build_telegram(config: Config) -> TelegramChannel:
    return TelegramChannel(
        settings=config.channels.telegram,
        attachments_dir=config.server.attachments_dir,
        # router.app polls on the node that leads "telegram-polling".
        poll_on_start=False,
    )


def build_email(config: Config, *, secret: bytes) -> EmailChannel:
    return EmailChannel(
        settings=config.channels.email,
        attachments_dir=config.server.attachments_dir / "email",
        secret=secret,
    )


def build_smtp_receiver(config: Config, channel: EmailChannel) -> SmtpReceiver:
    smtp = config.channels.email.smtp
    return SmtpReceiver(
        channel=channel,
        host=smtp.host,
        port=smtp.port,
        max_message_bytes=smtp.max_message_bytes,
    )


def build_imap_pollers(config: Config, channel: EmailChannel) -> list[ImapPoller]:
    return [
        ImapPoller(
            channel=channel,
            settings=account,
            # One state file per account: UIDs are per server and mailbox.
            state_path=config.server.data_dir
            / f"imap-state-{_file_safe(account.username)}-{_file_safe(account.host)}.json",
        )
        for account in config.channels.email.imap
    ]


def build_wechat(config: Config, *, tokens: TokenStore) -> OfficialAccountChannel:
    return OfficialAccountChannel(
        settings=config.channels.wechat,
        attachments_dir=config.server.attachments_dir,
        tokens=tokens,
    )


def build_wecom_kf(config: Config, *, tokens: TokenStore, cursors: CursorStore) -> WeComKfChannel:
    return WeComKfChannel(
        settings=config.channels.wecom_kf,
        attachments_dir=config.server.attachments_dir,
        state=tokens,
        cursors=cursors,
    )


def build_api_channels(config: Config) -> list[ApiChannel]:
    return [
        ApiChannel(name=name, settings=bridge)
        for name, bridge in config.channels.api.items()
        if bridge.enabled
    ]


def channel_rules(config: Config) -> dict[str, ChannelRules]:
    e = config.channels.email
    if not e.enabled:
        return {}
    # Email is answered once and only when sure: no quick replies to press, and
    # every extra mail to a customer (or to an auto-responder) costs more than a chat line.
    return {
        "email": ChannelRules(
            min_answer_score=e.answer_threshold,
            clarify=False,
            answer_once=True,
            auto_reply_limit=e.auto_replies_per_hour,
        )
    }


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:80]


def load_secret(config: Config) -> bytes:
    """The configured secret, else one generated once and kept in ``data_dir``."""
    if config.server.secret_key:
        return config.server.secret_key.encode()
    path = config.server.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()  # made by a parallel start a moment ago
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    logger.info("generated a secret key in %s", path)
    return key.encode()
