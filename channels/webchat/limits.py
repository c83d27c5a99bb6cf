"""How fast a visitor, an address and new visitors may go: token buckets by key."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from channels.webchat.settings import WebChatSettings

__all__ = ["ChatLimits", "MemoryRateLimits", "RateLimits"]

# Rate-limit buckets kept per visitor and per address; the least recently used go first.
_MAX_BUCKETS = 20_000


class _Bucket:
    """Token bucket: ``burst`` messages at once, refilled at ``per_minute``."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, burst: int, per_minute: int) -> None:
        self.capacity = float(burst)
        self.level = float(burst)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 if a message may pass now, else the seconds until one may."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class RateLimits(Protocol):
    """Token buckets by key, shared by whoever serves web chat (one process's memory, or
    the database when several nodes do)."""

    async def take(self, *buckets: tuple[str, int, int]) -> float:
        """A token from each (key, burst, per minute) bucket; 0 if every one had one,
        else the seconds until all will (a refused take still spends the others')."""
        ...


class MemoryRateLimits:
    """Buckets in this process, the least recently used forgotten past ``_MAX_BUCKETS``."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def take(self, *buckets: tuple[str, int, int]) -> float:
        wait = 0.0
        for key, burst, per_minute in buckets:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, per_minute)
                if len(self._buckets) > _MAX_BUCKETS:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            wait = max(wait, bucket.take())
        return wait


class ChatLimits:
    """Web chat's three limits over one ``RateLimits``: a visitor's messages, an
    address's messages (all its visitors together) and an address's new visitors."""

    def __init__(self, settings: WebChatSettings, limits: RateLimits | None = None) -> None:
        self._limits: RateLimits = limits or MemoryRateLimits()
        self._visitor = (settings.rate_limit.burst, settings.rate_limit.per_minute)
        # An address may burst a quarter of its minute (a shop's office behind one NAT).
        per_address = settings.address_messages_per_minute
        self._address = (max(1, per_address // 4), per_address)
        self._new = (settings.new_visitors_per_minute, settings.new_visitors_per_minute)

    async def message(self, visitor_id: str, address: str) -> float:
        """0 if ``visitor_id`` at ``address`` may send a message now, else seconds to wait."""
        return await self._limits.take(
            ("visitor:" + visitor_id, *self._visitor), ("address:" + address, *self._address)
        )

    async def new_visitor(self, address: str) -> float:
        """0 if ``address`` may start a new chat now, else seconds to wait."""
        return await self._limits.take(("new:" + address, *self._new))
