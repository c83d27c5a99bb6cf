"""The visitors with open tabs on this node, and their stored stream.

Stored is delivered: each frame is numbered and stored first (``VisitorStream``),
then shown to the visitor's open tabs; a tab that reconnects is replayed what it
missed. This is the only per-visitor memory a node keeps, and only while a visitor
has a tab open or a delivery is in progress."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from channels.webchat.frames import send_quietly
from channels.webchat.stream import VisitorStream

__all__ = ["Live", "OpenTabs"]


class Live:
    """A visitor with open tabs (or a delivery in progress).
    ``lock`` keeps numbering and sending in one order, and a replay whole."""

    __slots__ = ("lock", "shown", "sockets", "users")

    def __init__(self) -> None:
        self.sockets: set[web.WebSocketResponse] = set()
        self.lock = asyncio.Lock()
        self.users = 0
        # The newest frame this node showed the visitor's open tabs.
        self.shown = 0

    async def show(self, frame: dict[str, Any]) -> None:
        await asyncio.gather(*(send_quietly(ws, frame) for ws in tuple(self.sockets)))


class OpenTabs:
    def __init__(self, stream: VisitorStream, history_frames: int) -> None:
        self.stream = stream
        self.history_frames = history_frames
        self._live: dict[str, Live] = {}

    @property
    def held(self) -> int:
        """Visitors this node keeps anything for (an open tab, a delivery under way)."""
        return len(self._live)

    def get(self, visitor_id: str) -> Live | None:
        return self._live.get(visitor_id)

    def sockets(self) -> list[web.WebSocketResponse]:
        return [ws for live in self._live.values() for ws in live.sockets]

    def hold(self, visitor_id: str) -> Live:
        """The visitor's ``Live``, kept until ``let_go``."""
        live = self._live.get(visitor_id)
        if live is None:
            live = self._live[visitor_id] = Live()
        live.users += 1
        return live

    def let_go(self, visitor_id: str, live: Live) -> None:
        live.users -= 1
        if live.users <= 0 and not live.sockets and self._live.get(visitor_id) is live:
            del self._live[visitor_id]

    async def publish(self, visitor_id: str, frame_id: str, frame: dict[str, Any]) -> None:
        live = self.hold(visitor_id)
        try:
            async with live.lock:
                await self.append(visitor_id, live, frame_id, frame)
        finally:
            self.let_go(visitor_id, live)

    async def append(
        self, visitor_id: str, live: Live, frame_id: str, frame: dict[str, Any]
    ) -> None:
        """Number and store ``frame``, then show it; the caller holds ``live.lock``."""
        seq, new = await self.stream.append(visitor_id, frame_id, frame)
        # A frame stored before was shown then, or is replayed on the reconnect that
        # follows whatever interrupted it: never twice.
        if new and live.sockets:
            if seq > live.shown + 1:  # another node stored frames in between: those first
                await self.show_stored(visitor_id, live, upto=seq - 1)
            await live.show({**frame, "seq": seq})
            live.shown = max(live.shown, seq)

    async def stored_elsewhere(self, visitor_id: str | None = None) -> None:
        """Another node stored frames for ``visitor_id`` (None: perhaps for anyone here,
        after missed news): show its open tabs what they have not seen, in order."""
        wanted = [visitor_id] if visitor_id is not None else list(self._live)
        for visitor in wanted:
            live = self._live.get(visitor)
            if live is None or not live.sockets:
                continue
            async with live.lock:
                await self.show_stored(visitor, live)

    async def show_stored(self, visitor_id: str, live: Live, upto: int | None = None) -> None:
        frames = await self.stream.after(visitor_id, live.shown, self.history_frames)
        for frame in frames:
            seq = int(frame["seq"])
            if upto is not None and seq > upto:
                break
            await live.show(frame)
            live.shown = max(live.shown, seq)
