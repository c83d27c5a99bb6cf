"""An in-memory channel: inject inbound messages, record what is sent.

For tests and local experiments, after Rasa's ``CollectingOutputChannel``.
Failures can be scripted per send to exercise the outbox's retry rules.
"""

from __future__ import annotations

import asyncio
from collections import deque

from channels.base import (
    ChannelAddress,
    ChannelHealth,
    DeliveryError,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundMessage,
    SenderIdentity,
)

__all__ = ["MemoryChannel"]


class MemoryChannel:
    """A channel whose far side is a list."""

    def __init__(self, *, name: str = "memory") -> None:
        self._name = name
        self._on_message: InboundHandler | None = None
        self._failures: deque[DeliveryError] = deque()
        self._changed = asyncio.Condition()
        self.sent: list[OutboundMessage] = []
        self.attempts = 0

    @property
    def name(self) -> str:
        return self._name

    async def start(self, on_message: InboundHandler) -> None:
        self._on_message = on_message

    async def stop(self) -> None:
        self._on_message = None

    def health(self) -> ChannelHealth:
        return ChannelHealth(ok=self._on_message is not None, detail="in memory")

    def fail_next(self, *errors: DeliveryError) -> None:
        """Make the next ``len(errors)`` sends raise these errors, in order."""
        self._failures.extend(errors)

    async def send(self, outbound: OutboundMessage) -> None:
        async with self._changed:
            self.attempts += 1
            self._changed.notify_all()
            if self._failures:
                raise self._failures.popleft()
            self.sent.append(outbound)
            self._changed.notify_all()

    async def inject(self, inbound: InboundMessage) -> InboundReceipt:
        """Deliver a message as if it came from a customer; returns the router's receipt."""
        if self._on_message is None:
            raise RuntimeError(f"channel {self._name!r} is not started")
        return await self._on_message(inbound)

    def message(
        self, text: str, *, external_id: str, sender: str = "customer-1", **extras: str
    ) -> InboundMessage:
        """Build an inbound message from ``sender`` on this channel."""
        return InboundMessage(
            external_id=external_id,
            address=ChannelAddress(channel=self._name, recipient_id=sender),
            sender=SenderIdentity(channel=self._name, external_id=sender, display_name=sender),
            text=text,
            extras=extras,
        )

    async def wait_for_sent(self, count: int, *, within: float = 5.0) -> list[OutboundMessage]:
        """Wait until at least ``count`` messages were delivered; returns them all."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
            return list(self.sent)

    async def wait_for_attempts(self, count: int, *, within: float = 5.0) -> None:
        """Wait until ``send`` was called at least ``count`` times, failed or not."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: self.attempts >= count)
