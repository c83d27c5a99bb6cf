"""Telegram's settings: ``channels.telegram`` in config.yaml validates into this."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from channels.settings import MIB, ChannelSettings

__all__ = ["TelegramSettings"]


class TelegramSettings(ChannelSettings):
    enabled: bool = False
    token: str = ""
    # webhook (any node; Telegram calls us) or polling (one process; for a laptop).
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_path: str = "/telegram/webhook"
    webhook_secret: str = ""
    api_base_url: str = "https://api.telegram.org"
    allow_groups: bool = False
    per_chat_interval_seconds: float = Field(default=1.0, ge=0)
    messages_per_second: float = Field(default=30.0, ge=0)
    max_file_mb: int = Field(default=20, ge=1)
    poll_timeout_seconds: int = Field(default=30, ge=0)

    def problem(self) -> str | None:
        if not self.token:
            return "token is required when the channel is enabled"
        if self.mode == "webhook" and len(self.webhook_secret) < 16:
            return "webhook mode needs a webhook_secret of at least 16 characters"
        if not self.webhook_path.startswith("/"):
            return "webhook_path must start with /"
        return None

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MIB
