"""Past cases for agent assist: conversations people resolved, each with what the
customer wrote up to the handoff and the reply that resolved it."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from router.conversations import AuthorKind, ConversationStatus, Direction
from router.storage.inbox_queries import SeenBy
from router.storage.models import ConversationRow, MessageRow

__all__ = ["CaseQueries", "PastCase"]


class PastCase(NamedTuple):
    """A conversation a person resolved, as assist reads it."""

    conversation_id: int
    asked: tuple[str, ...]  # the customer's messages up to the handoff (or their first)
    reply: str
    resolved_at: datetime
    csat_score: int | None


class CaseQueries:
    session: AsyncSession

    async def past_cases(
        self,
        *,
        since: datetime,
        limit: int,
        exclude: int | None = None,
        seen_by: SeenBy | None = None,
    ) -> list[PastCase]:
        """The latest ``limit`` conversations resolved since ``since`` after a handoff,
        with an agent's reply, not rated low (1 or 2 of 5) and not erased; newest first.
        ``seen_by``: only those that agent may see."""
        c = ConversationRow
        query = (
            select(c.id, c.handed_off_at, c.resolved_at, c.csat_score)
            .where(
                c.status == ConversationStatus.RESOLVED.value,
                c.handed_off_at.is_not(None),
                c.resolved_at.is_not(None),
                c.resolved_at >= since,
                # An erased contact's conversations keep their rows, blank.
                c.reply_recipient != "erased",
                or_(c.csat_score.is_(None), c.csat_score >= 3),
            )
            .order_by(c.resolved_at.desc(), c.id.desc())
            .limit(limit)
        )
        if exclude is not None:
            query = query.where(c.id != exclude)
        if seen_by is not None:
            query = query.where(seen_by.clause())
        conversations = (await self.session.execute(query)).all()
        if not conversations:
            return []
        m = MessageRow
        rows = (
            await self.session.execute(
                select(m.conversation_id, m.direction, m.author_kind, m.text, m.created_at)
                .where(
                    m.conversation_id.in_([row.id for row in conversations]),
                    or_(
                        m.author_kind == AuthorKind.CUSTOMER.value,
                        (m.author_kind == AuthorKind.AGENT.value)
                        & (m.direction == Direction.OUT.value),
                    ),
                    m.text != "",
                )
                .order_by(m.conversation_id, m.id)
            )
        ).all()
        asked: dict[int, list[str]] = {}
        first: dict[int, str] = {}
        replied: dict[int, str] = {}
        by_id = {row.id: row for row in conversations}
        for message in rows:
            case = by_id[message.conversation_id]
            if message.author_kind == AuthorKind.CUSTOMER.value:
                first.setdefault(message.conversation_id, message.text)
                if message.created_at <= case.handed_off_at:
                    asked.setdefault(message.conversation_id, []).append(message.text)
            elif message.created_at <= case.resolved_at:
                replied[message.conversation_id] = message.text
        cases = []
        for case in conversations:
            reply = replied.get(case.id)
            texts = asked.get(case.id) or ([first[case.id]] if case.id in first else [])
            if reply is None or not texts:
                continue
            cases.append(
                PastCase(
                    conversation_id=case.id,
                    asked=tuple(texts),
                    reply=reply,
                    resolved_at=case.resolved_at,
                    csat_score=case.csat_score,
                )
            )
        return cases
