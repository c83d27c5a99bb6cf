"""Who is online in the inbox, what they are looking at and typing in, on every node.

Each node holds its own agents' websockets (to send them frames) and writes what each
open inbox does into the database's ``presence`` table. A change is announced on the
event bus (``PresenceChanged``, which the PostgreSQL bus carries to the other nodes);
every node then reads the conversation's viewers from the table once and tells its
own screens. So an agent on node A sees that one on node B is typing, and the
auto-assigner of any node knows every online agent.

A node refreshes its rows every ``HEARTBEAT`` seconds and removes them when the
websocket closes; rows of a node that died are ignored once ``STALE`` seconds old and
then deleted by whichever node refreshes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from router.delivery.events import EventBus, PresenceChanged
from router.storage import Database, Repositories

__all__ = ["HEARTBEAT", "STALE", "Presence"]

logger = logging.getLogger(__name__)

_TYPING_SECONDS = 6.0
HEARTBEAT = 30.0
STALE = 3 * HEARTBEAT


@dataclass
class _Connection:
    agent_id: int
    name: str
    send: Callable[[dict[str, Any]], Any]
    viewing: int | None = None
    typing_until: float = 0.0
    expiry: asyncio.TimerHandle | None = None


class Presence:
    def __init__(
        self, db: Database, events: EventBus, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._events = events
        self._clock = clock
        self._node = events.node_id
        self._connections: dict[int, _Connection] = {}
        self._next = 0
        self._tasks: list[asyncio.Task[None]] = []
        # Called with an agent id when that agent comes online on any node (the
        # auto-assigner drains).
        self.on_online: list[Callable[[int], Any]] = []

    @property
    def connected(self) -> int:
        """Open inbox websockets on this node."""
        return len(self._connections)

    # -- the node's life -----------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="presence-events"),
            asyncio.create_task(self._heartbeat(), name="presence-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        handles = list(self._connections)
        for handle in handles:
            await self.disconnect(handle)

    async def _listen(self) -> None:
        async with self._events.subscribe() as events:
            while True:
                event = await events.get()
                if not isinstance(event, PresenceChanged):
                    continue
                if event.online:
                    for callback in self.on_online:
                        callback(event.agent_id)
                if event.conversation_id is not None and self._connections:
                    frame = await self.snapshot(event.conversation_id)
                    for connection in list(self._connections.values()):
                        connection.send(frame)

    async def _heartbeat(self) -> None:
        while True:
            # A periodic refresh, not synchronisation: other nodes judge our rows by it.
            await asyncio.sleep(HEARTBEAT)
            await self._write(self._refresh)

    async def _refresh(self, repo: Repositories) -> None:
        now = self._clock()
        await repo.refresh_presence(self._node, list(self._connections), now)
        await repo.forget_presence(now - STALE)

    # -- one websocket -------------------------------------------------------------------

    async def connect(self, agent_id: int, name: str, send: Callable[[dict[str, Any]], Any]) -> int:
        was_online = agent_id in await self.online()
        self._next += 1
        handle = self._next
        self._connections[handle] = _Connection(agent_id, name, send)
        now = self._clock()

        async def add(repo: Repositories) -> None:
            await repo.add_presence(
                node=self._node, handle=handle, agent_id=agent_id, name=name[:200], now=now
            )

        await self._write(add)
        if not was_online:
            await self._events.publish(PresenceChanged(None, agent_id, True))
        return handle

    async def disconnect(self, handle: int) -> None:
        gone = self._connections.pop(handle, None)
        if gone is None:
            return
        if gone.expiry is not None:
            gone.expiry.cancel()
        await self._write(lambda repo: repo.remove_presence(self._node, handle))
        if gone.viewing is not None:
            await self._events.publish(PresenceChanged(gone.viewing, gone.agent_id, False))

    async def online(self) -> set[int]:
        """The agents with an inbox open on any node."""
        here = {c.agent_id for c in self._connections.values()}
        try:
            async with self._db.read() as repo:
                return here | await repo.online_agents(self._clock() - STALE)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("presence not read (%s); this node's agents only", type(exc).__name__)
            return here

    async def view(self, handle: int, conversation_id: int | None) -> None:
        connection = self._connections.get(handle)
        if connection is None:
            return
        before = connection.viewing
        connection.viewing = conversation_id
        connection.typing_until = 0.0
        await self._write(
            lambda repo: repo.set_presence(
                self._node, handle, viewing=conversation_id, typing_until=None
            )
        )
        for changed in {before, conversation_id} - {None}:
            await self._events.publish(PresenceChanged(changed, connection.agent_id, False))

    async def typing(self, handle: int) -> None:
        connection = self._connections.get(handle)
        if connection is None or connection.viewing is None:
            return
        now = self._clock()
        fresh = connection.typing_until < now
        if not fresh and connection.typing_until - now > _TYPING_SECONDS - 1.5:
            return  # written a moment ago
        connection.typing_until = until = now + _TYPING_SECONDS
        await self._write(lambda repo: repo.set_presence(self._node, handle, typing_until=until))
        if fresh:
            await self._events.publish(
                PresenceChanged(connection.viewing, connection.agent_id, False)
            )
            self._expire_later(handle, connection)

    def _expire_later(self, handle: int, connection: _Connection) -> None:
        """Announce the end of typing when it ends (later, if it goes on meanwhile)."""
        delay = max(connection.typing_until - self._clock(), 0.0) + 0.1

        def check() -> None:
            if self._connections.get(handle) is not connection:
                return
            if connection.typing_until > self._clock():
                self._expire_later(handle, connection)
            elif connection.viewing is not None:
                self._tasks.append(
                    asyncio.ensure_future(
                        self._events.publish(
                            PresenceChanged(connection.viewing, connection.agent_id, False)
                        )
                    )
                )
                self._tasks = [t for t in self._tasks if not t.done()]

        connection.expiry = asyncio.get_running_loop().call_later(delay, check)

    async def snapshot(self, conversation_id: int) -> dict[str, Any]:
        now = self._clock()
        here = [c for c in self._connections.values() if c.viewing == conversation_id]
        viewing = {c.name for c in here}
        typing = {c.name for c in here if c.typing_until > now}
        try:
            async with self._db.read() as repo:
                for viewer in await repo.viewers(conversation_id, now - STALE):
                    viewing.add(viewer.name)
                    if viewer.typing_until is not None and viewer.typing_until > now:
                        typing.add(viewer.name)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("presence not read (%s)", type(exc).__name__)
        return {
            "type": "presence",
            "conversation_id": conversation_id,
            "viewing": sorted(viewing),
            "typing": sorted(typing),
        }

    async def _write(self, change: Callable[[Repositories], Awaitable[object]]) -> None:
        """Presence is advice: a database that is away costs it, never the websocket."""
        try:
            async with self._db.write() as repo:
                await change(repo)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("presence not stored (%s)", type(exc).__name__)
