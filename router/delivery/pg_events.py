"""The event bus between nodes on one PostgreSQL: LISTEN/NOTIFY.

Each node publishes to its own subscribers as the in-process bus does, and tells
the other nodes with ``NOTIFY relaydesk_events``. A unit of work's events are
notified *inside* its transaction (``notify_in``): PostgreSQL delivers them when,
and only when, it commits, so no node hears of a change that was rolled back and
none misses one that committed. Payloads are small (ids and short fields; readers
fetch the rows). A node ignores its own notifications (it published them already).

One connection per node listens. If it drops, the node reconnects (with growing
pauses) and publishes ``Resync`` locally: screens refresh and web-chat visitors get
whatever was stored for them meanwhile, from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from router.delivery.events import EVENT_TYPES, Event, EventBus, Resync

__all__ = ["CHANNEL", "PgEventBus"]

logger = logging.getLogger(__name__)

CHANNEL = "relaydesk_events"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
# NOTIFY payloads must stay under 8000 bytes; our events are ids and short fields.
_MAX_PAYLOAD = 7000


class PgEventBus(EventBus):
    """``EventBus`` whose events also reach every other node on the same PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, queue_size: int = 1000) -> None:
        super().__init__(queue_size=queue_size)
        self._engine = engine
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.received = 0

    # -- out ---------------------------------------------------------------------------

    def _payload(self, event: Event) -> str | None:
        name = type(event).__name__
        if name not in EVENT_TYPES:
            return None
        fields = {k: (v[:500] if isinstance(v, str) else v) for k, v in asdict(event).items()}
        payload = json.dumps({"n": self.node_id, "t": name, "f": fields}, ensure_ascii=False)
        return payload if len(payload.encode()) <= _MAX_PAYLOAD else None

    async def notify_in(self, session: AsyncSession, events: list[Event]) -> None:
        for event in events:
            payload = self._payload(event)
            if payload is not None:
                await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})

    async def publish(self, *events: Event) -> None:
        """Events outside a unit of work (typing, deliveries recorded, reloads): to our
        subscribers now, to the other nodes by a NOTIFY of their own."""
        await super().publish(*events)
        payloads = [p for p in map(self._payload, events) if p is not None]
        if not payloads:
            return
        try:
            async with self._engine.begin() as connection:
                for payload in payloads:
                    await connection.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})
        except Exception:
            logger.exception("events not passed to the other nodes")

    # -- in ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="pg-event-listener")

    async def wait_listening(self) -> None:
        await self._connected.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen_forever(self) -> None:
        pause = 0.5
        first = True
        while True:
            try:
                async with self._engine.connect() as connection:
                    await self._listen(connection, resync=not first)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected.clear()
                logger.warning(
                    "event listener lost its connection (%s); again in %.1f s",
                    type(exc).__name__,
                    pause,
                )
            first = False
            # Not synchronisation: a pause before reconnecting to a database that is away.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 15.0)

    async def _listen(self, connection: AsyncConnection, *, resync: bool) -> None:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        lost = asyncio.get_running_loop().create_future()

        def heard(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            event = self._decode(payload)
            if event is not None:
                self.received += 1
                # The subscriber queues are in-process and never block.
                for subscription in tuple(self._subscribers):
                    subscription._offer(event)

        def gone(_connection: Any) -> None:
            if not lost.done():
                lost.set_result(None)

        await driver.add_listener(CHANNEL, heard)
        driver.add_termination_listener(gone)
        self._connected.set()
        logger.info("listening for other nodes' events")
        if resync:
            await super().publish(Resync())
        try:
            while not lost.done():
                # A cheap round trip now and then finds a connection that died silently.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(lost), timeout=10.0)
                if not lost.done():
                    await driver.execute("SELECT 1")
        finally:
            self._connected.clear()
            with contextlib.suppress(Exception):
                await driver.remove_listener(CHANNEL, heard)
        raise ConnectionError("the listening connection closed")

    def _decode(self, payload: str) -> Event | None:
        try:
            data = json.loads(payload)
            if data.get("n") == self.node_id:
                return None
            kind = EVENT_TYPES[data["t"]]
            event: Event = kind(**data["f"])
            return event
        except (ValueError, KeyError, TypeError):
            logger.warning("an event from another node could not be read; ignored")
            return None
