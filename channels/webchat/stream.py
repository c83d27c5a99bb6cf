"""Where a visitor's stream lives: the frames they were shown, numbered, for replay.

The channel asks; the composition root gives it a store that survives restarts
and is shared by every node (the router keeps it in the database). The memory
store is for tests and tools that run without one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["MemoryVisitorStream", "VisitorStream"]


class VisitorStream(Protocol):
    """A visitor's numbered frames. ``append`` is idempotent per ``frame_id``: a frame
    stored again (a re-delivered reply) keeps its first sequence number."""

    async def append(
        self, visitor_id: str, frame_id: str, frame: Mapping[str, Any]
    ) -> tuple[int, bool]:
        """Store ``frame``; returns (its seq, whether it is new)."""
        ...

    async def after(self, visitor_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` frames after ``seq``, oldest first, each with ``seq``."""
        ...


class MemoryVisitorStream:
    """A ``VisitorStream`` in this process only (lost on restart)."""

    def __init__(self) -> None:
        self._frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = asyncio.Lock()

    async def append(
        self, visitor_id: str, frame_id: str, frame: Mapping[str, Any]
    ) -> tuple[int, bool]:
        async with self._lock:
            known = self._ids.get((visitor_id, frame_id))
            if known is not None:
                return known, False
            frames = self._frames[visitor_id]
            seq = len(frames) + 1
            frames.append({**frame, "seq": seq})
            self._ids[(visitor_id, frame_id)] = seq
            return seq, True

    async def after(self, visitor_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        frames = self._frames.get(visitor_id, [])
        return [dict(f) for f in frames[seq:]][-limit:]
