"""The web-chat stream: what each visitor was shown, in order, for replay on any node."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import WebChatFrameRow

__all__ = ["WebChatQueries"]


class WebChatQueries:
    session: AsyncSession

    async def stream_frame(self, visitor_id: str, frame_id: str) -> int | None:
        """The seq of the frame already stored under ``frame_id``, if any."""
        return await self.session.scalar(
            select(WebChatFrameRow.seq).where(
                WebChatFrameRow.visitor_id == visitor_id, WebChatFrameRow.frame_id == frame_id
            )
        )

    async def append_frame(
        self, visitor_id: str, frame_id: str, frame: dict[str, Any], now: datetime
    ) -> int:
        """Store ``frame`` as the visitor's next one; its seq. The unique (visitor, seq)
        and (visitor, frame id) keys make a concurrent writer fail rather than interleave."""
        last = await self.session.scalar(
            select(func.max(WebChatFrameRow.seq)).where(WebChatFrameRow.visitor_id == visitor_id)
        )
        seq = int(last or 0) + 1
        self.session.add(
            WebChatFrameRow(
                visitor_id=visitor_id, seq=seq, frame_id=frame_id, frame=frame, created_at=now
            )
        )
        await self.session.flush()
        return seq

    async def frames_after(self, visitor_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` frames after ``seq``, oldest first, each with its seq."""
        rows = (
            await self.session.execute(
                select(WebChatFrameRow.seq, WebChatFrameRow.frame)
                .where(WebChatFrameRow.visitor_id == visitor_id, WebChatFrameRow.seq > seq)
                .order_by(WebChatFrameRow.seq.desc())
                .limit(limit)
            )
        ).all()
        return [{**frame, "seq": int(number)} for number, frame in reversed(rows)]

    async def last_frame_seq(self, visitor_id: str) -> int:
        last = await self.session.scalar(
            select(func.max(WebChatFrameRow.seq)).where(WebChatFrameRow.visitor_id == visitor_id)
        )
        return int(last or 0)

    async def prune_frames(self, before: datetime) -> int:
        """Forget frames older than ``before`` (their visitors' tokens have expired)."""
        result = await self.session.execute(
            delete(WebChatFrameRow).where(WebChatFrameRow.created_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
