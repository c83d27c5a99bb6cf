"""Who is online in the inbox, what they are looking at and typing in.

In-process: each node knows the agents connected to it (the LISTEN/NOTIFY bus
of a multi-node setup would carry presence too; not built yet).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Presence"]

_TYPING_SECONDS = 6.0


@dataclass
class _Connection:
    agent_id: int
    name: str
    send: Callable[[dict[str, Any]], Any]
    viewing: int | None = None
    typing_until: float = 0.0


@dataclass
class Presence:
    _connections: dict[int, _Connection] = field(default_factory=dict)
    _next: int = 0
    # Called with an agent id when that agent comes online (auto-assignment drains).
    on_online: list[Callable[[int], Any]] = field(default_factory=list)

    @property
    def connected(self) -> int:
        """Open inbox websockets on this node."""
        return len(self._connections)

    def connect(self, agent_id: int, name: str, send: Callable[[dict[str, Any]], Any]) -> int:
        was_online = agent_id in self.online()
        self._next += 1
        self._connections[self._next] = _Connection(agent_id, name, send)
        if not was_online:
            for callback in self.on_online:
                callback(agent_id)
        return self._next

    def disconnect(self, handle: int) -> None:
        gone = self._connections.pop(handle, None)
        if gone is not None and gone.viewing is not None:
            self._announce(gone.viewing)

    def online(self) -> set[int]:
        return {c.agent_id for c in self._connections.values()}

    def view(self, handle: int, conversation_id: int | None) -> None:
        connection = self._connections.get(handle)
        if connection is None:
            return
        before = connection.viewing
        connection.viewing = conversation_id
        connection.typing_until = 0.0
        for changed in {before, conversation_id} - {None}:
            assert changed is not None
            self._announce(changed)

    def typing(self, handle: int) -> None:
        connection = self._connections.get(handle)
        if connection is None or connection.viewing is None:
            return
        fresh = connection.typing_until < time.monotonic()
        connection.typing_until = time.monotonic() + _TYPING_SECONDS
        if fresh:
            self._announce(connection.viewing)
            asyncio.get_running_loop().call_later(
                _TYPING_SECONDS + 0.1, self._announce, connection.viewing
            )

    def snapshot(self, conversation_id: int) -> dict[str, Any]:
        now = time.monotonic()
        here = [c for c in self._connections.values() if c.viewing == conversation_id]
        return {
            "type": "presence",
            "conversation_id": conversation_id,
            "viewing": sorted({c.name for c in here}),
            "typing": sorted({c.name for c in here if c.typing_until > now}),
        }

    def _announce(self, conversation_id: int) -> None:
        frame = self.snapshot(conversation_id)
        for connection in list(self._connections.values()):
            connection.send(frame)
