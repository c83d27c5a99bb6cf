"""Saved replies and macros."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.conversations import Priority
from router.storage.models import CannedReplyRow

__all__ = ["CannedQueries", "CannedReply"]


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: int
    title: str
    text: str
    # Whose: an agent's own (owner_id), a team's (team), or everyone's (neither).
    owner_id: int | None
    team: str | None
    tags: tuple[str, ...]
    priority: Priority | None
    resolve: bool
    created_at: datetime
    updated_at: datetime

    @property
    def is_macro(self) -> bool:
        return bool(self.tags) or self.priority is not None or self.resolve


def _record(row: CannedReplyRow) -> CannedReply:
    return CannedReply(
        id=row.id,
        title=row.title,
        text=row.text,
        owner_id=row.owner_id,
        team=row.team,
        tags=tuple(str(t) for t in row.tags or ()),
        priority=None if row.priority is None else Priority(row.priority),
        resolve=bool(row.resolve),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class CannedQueries:
    session: AsyncSession

    async def canned_replies(
        self, *, agent_id: int, teams: Sequence[str] | None
    ) -> list[CannedReply]:
        """What ``agent_id`` may use: their own, everyone's, and ``teams``' (None: every
        team's, for admins); by title."""
        c = CannedReplyRow
        shared: Any = c.owner_id.is_(None)
        if teams is not None:
            shared = shared & (c.team.is_(None) | c.team.in_(list(teams)))
        rows = await self.session.scalars(
            select(c).where(or_(c.owner_id == agent_id, shared)).order_by(c.title, c.id)
        )
        return [_record(r) for r in rows]

    async def canned_reply(self, reply_id: int) -> CannedReply | None:
        row = await self.session.get(CannedReplyRow, reply_id)
        return None if row is None else _record(row)

    async def add_canned_reply(
        self,
        *,
        title: str,
        text: str,
        owner_id: int | None,
        team: str | None,
        tags: Sequence[str],
        priority: Priority | None,
        resolve: bool,
        now: datetime,
    ) -> CannedReply:
        row = CannedReplyRow(
            title=title,
            text=text,
            owner_id=owner_id,
            team=team,
            tags=list(tags) or None,
            priority=None if priority is None else priority.value,
            resolve=resolve,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return _record(row)

    async def update_canned_reply(
        self,
        reply_id: int,
        *,
        title: str,
        text: str,
        tags: Sequence[str],
        priority: Priority | None,
        resolve: bool,
        now: datetime,
    ) -> None:
        await self.session.execute(
            update(CannedReplyRow)
            .where(CannedReplyRow.id == reply_id)
            .values(
                title=title,
                text=text,
                tags=list(tags) or None,
                priority=None if priority is None else priority.value,
                resolve=resolve,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    async def delete_canned_reply(self, reply_id: int) -> None:
        await self.session.execute(delete(CannedReplyRow).where(CannedReplyRow.id == reply_id))
