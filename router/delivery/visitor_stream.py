"""The web-chat stream kept in the database: a restart, SIGTERM or kill -9, or another
node, replays exactly what the visitor was shown, under the same numbers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from router.delivery.events import EventBus, FrameStored
from router.storage import Database

__all__ = ["StoredVisitorStream"]

logger = logging.getLogger(__name__)


class StoredVisitorStream:
    """The web-chat channel's ``VisitorStream`` on our database."""

    def __init__(
        self, *, db: Database, clock: Callable[[], datetime], events: EventBus | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._events = events or EventBus()

    async def append(
        self, visitor_id: str, frame_id: str, frame: Mapping[str, Any]
    ) -> tuple[int, bool]:
        for _ in range(5):
            try:
                async with self._db.write() as repo:
                    seq, new = await repo.append_frame(
                        visitor_id, frame_id, dict(frame), self._clock()
                    )
                    if new:  # a node where the visitor is connected shows it
                        stored = FrameStored(visitor_id, seq, self._events.node_id)
                        await self._events.notify_in(repo.session, [stored])
                    return seq, new
            except IntegrityError:
                # Another node numbered a frame for this visitor at the same moment.
                continue
        raise RuntimeError(f"visitor {visitor_id}: could not number frame {frame_id}")

    async def after(self, visitor_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        async with self._db.read() as repo:
            return await repo.frames_after(visitor_id, seq, limit)

    async def prune(self, older_than: timedelta) -> int:
        async with self._db.write() as repo:
            removed = await repo.prune_frames(self._clock() - older_than)
        if removed:
            logger.info("web chat: %d frames of expired visitors forgotten", removed)
        return removed
