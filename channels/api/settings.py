"""A bridged app's settings: each entry of ``channels.api`` in config.yaml (its key is
the channel's name) validates into this."""

from __future__ import annotations

from pydantic import Field

from channels.settings import ChannelSettings

__all__ = ["ApiChannelSettings"]


class ApiChannelSettings(ChannelSettings):
    enabled: bool = True
    # Shared with the bridge: signs both directions (HMAC-SHA256), 16+ characters.
    secret: str = Field(min_length=16)
    # Where RelayDesk POSTs replies for this app.
    outbound_url: str = Field(pattern=r"^https?://")
    max_text_chars: int = Field(default=4000, ge=1)
    # Requests whose timestamp is further than this from now are refused (replays).
    timestamp_tolerance_seconds: float = Field(default=300.0, gt=0)
    # How long a reply POST to the bridge may take.
    timeout_seconds: float = Field(default=10.0, gt=0)
