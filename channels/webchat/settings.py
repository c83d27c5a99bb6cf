"""Web chat's settings: ``channels.webchat`` in config.yaml validates into this."""

from __future__ import annotations

from pydantic import Field, field_validator

from channels.settings import MIB, ChannelSettings

__all__ = ["RateLimit", "WebChatSettings"]


class RateLimit(ChannelSettings):
    """Per visitor: ``burst`` messages at once, refilled at ``per_minute``."""

    burst: int = Field(default=5, ge=1)
    per_minute: int = Field(default=30, ge=1)


class WebChatSettings(ChannelSettings):
    enabled: bool = True
    max_text_chars: int = Field(default=4000, ge=1)
    rate_limit: RateLimit = RateLimit()
    token_ttl_days: int = Field(default=30, ge=1)
    # Frames replayed to a visitor on a reconnect or reload (all are stored).
    history_frames: int = Field(default=200, ge=10)
    title: str = "RelayDesk"
    # Per client address (see ClientAddresses): new visitors, and all its visitors'
    # messages together, per minute.
    new_visitors_per_minute: int = Field(default=10, ge=1)
    address_messages_per_minute: int = Field(default=120, ge=1)
    # Shared with the shop to sign shoppers' identities (docs/webchat.md); empty: off.
    identity_secret: str = ""
    # Photos (JPEG, PNG, GIF, WebP, HEIC), PDFs and short videos (MP4, MOV) a visitor
    # may send, up to this size each; 0: no uploads.
    max_upload_mb: float = Field(default=10, ge=0, le=100)

    @field_validator("identity_secret")
    @classmethod
    def _identity_secret(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("needs 16 or more characters")
        return value

    @property
    def token_ttl_seconds(self) -> float:
        return self.token_ttl_days * 86400.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MIB)
