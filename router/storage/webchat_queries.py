"""The web-chat stream: what each visitor was shown, in order, for replay on any node."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
    ) -> tuple[int, bool]:
        """Store ``frame`` as the visitor's next one in one statement; (its seq, new).

        A frame stored before under ``frame_id`` keeps its seq (``new`` is False). On
        PostgreSQL a transaction lock per visitor makes nodes take turns; should two
        writers still meet, the unique (visitor, seq) key fails one, which tries again."""
        table = cast(Table, WebChatFrameRow.__table__)
        next_seq = (
            select(func.coalesce(func.max(table.c.seq), 0) + 1)
            .where(table.c.visitor_id == visitor_id)
            .scalar_subquery()
        )
        values = {
            "visitor_id": visitor_id,
            "seq": next_seq,
            "frame_id": frame_id,
            "frame": frame,
            "created_at": now,
        }
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            # Nodes number one visitor's frames in turn (SQLite has one writer anyway).
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"webchat:{visitor_id}"},
            )
        insert_ = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = (
            insert_(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["visitor_id", "frame_id"])
            .returning(table.c.seq)
        )
        seq = await self.session.scalar(statement)
        if seq is not None:
            return int(seq), True
        known = await self.stream_frame(visitor_id, frame_id)
        assert known is not None
        return known, False

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
