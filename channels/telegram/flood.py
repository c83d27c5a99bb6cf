"""Telegram's flood limits, kept on our side: about one message per second per chat
and thirty per second overall, and a chat told to wait (429) waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["FloodControl"]


class FloodControl:
    """Reserves send slots: each send waits until both its chat and the bot may send."""

    def __init__(
        self,
        *,
        per_chat_interval: float,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_chat = per_chat_interval
        self._global = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._chat_next: dict[int, float] = {}
        self._global_next = 0.0

    async def wait(self, chat_id: int) -> None:
        delay = self.reserve(chat_id)
        if delay > 0:
            # Rate limiting, not synchronisation: this is the wait Telegram asks for.
            await asyncio.sleep(delay)

    def reserve(self, chat_id: int) -> float:
        """Take the next free slot for ``chat_id``; seconds until it comes."""
        now = self._clock()
        # The overall budget is spent when the slot is taken, so one chat told to wait
        # (or busy) never holds up the others.
        overall = max(now, self._global_next)
        self._global_next = overall + self._global
        start = max(overall, self._chat_next.get(chat_id, 0.0))
        self._chat_next[chat_id] = start + self._per_chat
        if len(self._chat_next) > 10_000:
            self._forget_before(now)
        return start - now

    def hold(self, chat_id: int, seconds: float) -> None:
        """Telegram said this chat must wait: no slot before then."""
        until = self._clock() + seconds
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), until)

    def _forget_before(self, now: float) -> None:
        for chat_id in [c for c, t in self._chat_next.items() if t < now]:
            del self._chat_next[chat_id]
