"""What every channel's settings type shares.

A channel declares its settings once, as the pydantic model ``config.yaml``'s section
validates into: field names as the operator writes them, defaults and checks beside
them. The service passes the validated model to the channel unchanged; what the
service decides for itself (where files go, the signing secret) is a constructor
argument of the channel, not a setting.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["MIB", "ChannelSettings", "check_usable"]

MIB = 1024 * 1024


class ChannelSettings(BaseModel):
    """Frozen, and unknown keys are refused (a typo in config.yaml is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def problem(self) -> str | None:
        """Why a channel cannot run on these settings, or None (checked when enabled)."""
        return None

    @model_validator(mode="after")
    def _usable_when_enabled(self) -> Self:
        if getattr(self, "enabled", False):
            problem = self.problem()
            if problem is not None:
                raise ValueError(problem)
        return self


def check_usable(settings: ChannelSettings, channel: str) -> None:
    """Refuse to build a channel on settings it cannot run on."""
    problem = settings.problem()
    if problem is not None:
        raise ValueError(f"{channel}: {problem}")
