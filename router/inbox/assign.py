"""Auto-assignment: queued conversations go to online agents in turn, up to a capacity.

A team's conversation goes only to the team's members (up to the team's capacity,
when it has one); one in everyone's queue to any online agent.

Runs whenever a conversation is queued or closed, or an agent comes online (on any
node: presence is shared). One round at a time across the nodes (a lock in the
database), among every online agent, with their load counted in SQL; the claim-style
update in ``HumanDesk.assign`` keeps a conversation from being given twice anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable

from router.conversations import ConversationStatus
from router.delivery.events import ConversationChanged, EventBus
from router.desk.actions import HumanDesk
from router.desk.routing import Routing
from router.errors import DeskError
from router.inbox.presence import Presence
from router.storage import Database, QueueFilter

__all__ = ["AutoAssigner"]

logger = logging.getLogger(__name__)


class AutoAssigner:
    def __init__(
        self,
        *,
        db: Database,
        desk: HumanDesk,
        events: EventBus,
        presence: Presence,
        capacity: int,
        routing: Callable[[], Routing] = Routing,
    ) -> None:
        self._db = db
        self._desk = desk
        self._events = events
        self._presence = presence
        self._capacity = capacity
        self._routing = routing
        self._turn = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.rounds = 0
        self.done = asyncio.Condition()

    def start(self) -> None:
        self._presence.on_online.append(lambda _agent: self._wake.set())
        self._task = asyncio.create_task(self._run(), name="auto-assign")
        self._listener = asyncio.create_task(self._listen(), name="auto-assign-events")

    async def stop(self) -> None:
        for task in (self._listener, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self) -> None:
        async with self._events.subscribe() as events:
            while True:
                event = await events.get()
                if isinstance(event, ConversationChanged) and (
                    event.status == ConversationStatus.QUEUED.value
                    or event.status == ConversationStatus.RESOLVED.value
                ):
                    self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                logger.exception("auto-assignment round failed")
            async with self.done:
                self.rounds += 1
                self.done.notify_all()

    async def drain(self) -> int:
        """Assign what the online agents have room for; returns how many were assigned."""
        async with self._db.exclusively("auto-assign"):
            return await self._drain()

    async def _drain(self) -> int:
        online = sorted(await self._presence.online())
        if not online:
            return 0
        async with self._db.read() as repo:
            queued = await repo.queue_page(
                QueueFilter(statuses=(ConversationStatus.QUEUED,), unassigned=True), limit=200
            )
            load = Counter(await repo.assigned_counts())
            agents = {a.id: a for a in await repo.agents() if a.active}
        routing = self._routing()
        count = 0
        for conversation in queued:
            members = routing.members(conversation.team)
            capacity = routing.capacity(conversation.team, self._capacity)
            # Round robin: the next online agent after the last one served, with room.
            turn = online[self._turn % len(online) :] + online[: self._turn % len(online)]
            chosen = next(
                (
                    a
                    for a in turn
                    if a in agents
                    and load[a] < capacity
                    and (members is None or agents[a].name in members)
                ),
                None,
            )
            if chosen is None:
                continue  # nobody of its team has room; others' may still be given
            target = agents[chosen]
            self._turn = online.index(chosen) + 1
            try:
                await self._desk.assign(conversation.id, target, target)
            except DeskError:
                continue  # someone claimed it meanwhile
            load[target.id] += 1
            count += 1
            logger.info("conversation %s auto-assigned to %s", conversation.id, target.name)
        return count
