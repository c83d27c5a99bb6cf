"""The web-chat stream: what each visitor was shown, in order, for replay on any node."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import WebChatFrameRow

__all__ = ["WebChatQueries"]

_TABLE = cast(Table, WebChatFrameRow.__table__)
_APPEND: dict[str, Any] = {}


def _append_statement(dialect: str) -> Any:
    """INSERT … SELECT max(seq) + 1 … ON CONFLICT (visitor, frame id) DO NOTHING
    RETURNING seq, built once per dialect: its values are parameters."""
    if dialect not in _APPEND:
        insert_ = sqlite_insert if dialect == "sqlite" else postgresql_insert
        next_seq = (
            select(func.coalesce(func.max(_TABLE.c.seq), 0) + 1)
            .where(_TABLE.c.visitor_id == bindparam("visitor_id"))
            .scalar_subquery()
        )
        _APPEND[dialect] = (
            insert_(_TABLE)
            .values(
                visitor_id=bindparam("visitor_id"),
                seq=next_seq,
                frame_id=bindparam("frame_id"),
                frame=bindparam("frame", type_=_TABLE.c.frame.type),
                created_at=bindparam("created_at", type_=_TABLE.c.created_at.type),
            )
            .on_conflict_do_nothing(index_elements=["visitor_id", "frame_id"])
            .returning(_TABLE.c.seq)
        )
    return _APPEND[dialect]


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
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            # Nodes number one visitor's frames in turn (SQLite has one writer anyway).
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"webchat:{visitor_id}"},
            )
        statement = _append_statement(dialect)
        params = {
            "visitor_id": visitor_id,
            "frame_id": frame_id,
            "frame": frame,
            "created_at": now,
        }
        seq = await self.session.scalar(statement, params)
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

    async def prune_frames(self, before: datetime) -> int:
        """Forget frames older than ``before`` (their visitors' tokens have expired)."""
        result = await self.session.execute(
            delete(WebChatFrameRow).where(WebChatFrameRow.created_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
