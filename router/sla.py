"""Service promises: when a person will answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from router.conversations import Priority

__all__ = ["SlaPolicy"]


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """First-response promises per priority, and the desk's time zone for telling customers."""

    first_response: Mapping[Priority, timedelta]
    zone: ZoneInfo

    def due(self, priority: Priority, now: datetime) -> datetime:
        return now + self.first_response[priority]

    @classmethod
    def from_minutes(cls, minutes: Mapping[str, int], zone: ZoneInfo) -> SlaPolicy:
        return cls(
            first_response={Priority.parse(k): timedelta(minutes=v) for k, v in minutes.items()},
            zone=zone,
        )
