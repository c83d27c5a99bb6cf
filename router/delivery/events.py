"""The event bus: what happened, for whoever is watching (agents' screens, web-chat pages).

Events are published after the transaction that caused them committed. The
in-process bus here serves one node; ``router.delivery.pg_events`` (PostgreSQL
LISTEN/NOTIFY, the same interface) carries them between nodes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "EVENT_TYPES",
    "AgentAlert",
    "AgentTyping",
    "ConversationChanged",
    "DeliveryFailed",
    "Event",
    "EventBus",
    "FrameStored",
    "KnowledgeReloaded",
    "MessageAdded",
    "MessageDelivered",
    "PresenceChanged",
    "Resync",
    "SlaAlert",
    "Subscription",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MessageAdded:
    conversation_id: int
    message_id: int
    author_kind: str
    direction: str


@dataclass(frozen=True, slots=True)
class ConversationChanged:
    conversation_id: int
    status: str
    assignee_id: int | None


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    conversation_id: int
    outbox_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    conversation_id: int
    outbox_id: int
    error: str
    dead: bool


@dataclass(frozen=True, slots=True)
class AgentTyping:
    """An agent is writing a reply; ``reply_channel``/``recipient_id`` say where the customer is."""

    conversation_id: int
    agent_name: str
    reply_channel: str
    recipient_id: str
    # The node the agent typed on: a platform's "typing" is sent from there only.
    node: str = ""


@dataclass(frozen=True, slots=True)
class KnowledgeReloaded:
    """The knowledge base's files changed: ``error`` is None when the new one is serving,
    else why the previous one stays."""

    entries: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SlaAlert:
    """A promise is about to be missed (``level`` warning) or was missed (breach)."""

    conversation_id: int
    metric: str
    level: str
    due_at: str
    policy: str
    assignee_id: int | None


@dataclass(frozen=True, slots=True)
class AgentAlert:
    """Something for one agent (or, with ``agent_id`` None, for supervisors): a
    conversation handed to them, a reminder they set, a low rating."""

    agent_id: int | None
    conversation_id: int
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class FrameStored:
    """A web-chat frame was stored for ``visitor_id`` (by node ``node``): a node where the
    visitor is connected shows it."""

    visitor_id: str
    seq: int
    node: str


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Who looks at ``conversation_id`` (or types in it) changed, or agent ``agent_id``
    came ``online``: each node reads the presence table and tells its own screens."""

    conversation_id: int | None
    agent_id: int
    online: bool


@dataclass(frozen=True, slots=True)
class Resync:
    """This node may have missed other nodes' events (its listener reconnected):
    whoever shows live state reads it again."""


Event = (
    MessageAdded
    | ConversationChanged
    | MessageDelivered
    | DeliveryFailed
    | AgentTyping
    | KnowledgeReloaded
    | SlaAlert
    | AgentAlert
    | FrameStored
    | PresenceChanged
    | Resync
)

# What may travel between nodes, by name.
EVENT_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        MessageAdded,
        ConversationChanged,
        MessageDelivered,
        DeliveryFailed,
        AgentTyping,
        KnowledgeReloaded,
        SlaAlert,
        AgentAlert,
        FrameStored,
        PresenceChanged,
    )
}


class Subscription:
    """One subscriber's queue. A subscriber that falls far behind loses the oldest events
    (and is told so by ``dropped``) rather than holding memory without bound."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()


class EventBus:
    """In-process publish/subscribe (one node; ``router.delivery.pg_events`` spans several)."""

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self.published = 0
        self.node_id = uuid.uuid4().hex[:12]

    async def notify_in(self, session: AsyncSession, events: list[Event]) -> None:
        """Tell other nodes inside the caller's transaction (nothing to tell here)."""

    async def publish_local(self, *events: Event) -> None:
        """To this node's subscribers only (the other nodes heard by ``notify_in``)."""
        await EventBus.publish(self, *events)

    async def publish(self, *events: Event) -> None:
        for event in events:
            self.published += 1
            for subscription in tuple(self._subscribers):
                subscription._offer(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self._queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
