"""What the agents' inbox reads and changes: the queue page, search, tags, transfers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import cast as as_type

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from router.conversations import ConversationStatus, Direction
from router.storage.mapping import contact_record, conversation_record, message_record
from router.storage.models import (
    ContactRow,
    ConversationRow,
    IdentityRow,
    MessageRow,
    SlaTimerRow,
)
from router.storage.records import Contact, Conversation, Message

__all__ = ["InboxQueries", "QueueFilter", "SeenBy"]


def as_row(row: Any) -> MessageRow:
    """A Core row of ``messages`` read like the ORM row (the same named columns)."""
    return as_type(MessageRow, row)


@dataclass(frozen=True, slots=True)
class SeenBy:
    """What a plain agent sees where teams keep to their own conversations
    (``inbox.team_visibility: own``): those in no team's queue, in one of ``teams``,
    or assigned to them."""

    agent_id: int
    teams: tuple[str, ...]

    def clause(self) -> Any:
        return or_(
            ConversationRow.team.is_(None),
            ConversationRow.team.in_(list(self.teams)),
            ConversationRow.assignee_id == self.agent_id,
        )

    def sees(self, conversation: Conversation) -> bool:
        """The same rule for one conversation in hand."""
        return (
            conversation.team is None
            or conversation.team in self.teams
            or conversation.assignee_id == self.agent_id
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFilter:
    """Which conversations a queue tab shows."""

    statuses: Sequence[ConversationStatus]
    assignee_id: int | None = None
    unassigned: bool = False
    channel: str | None = None
    language: str | None = None
    tag: str | None = None
    conversation_ids: Sequence[int] | None = None
    # Only these teams' conversations (an empty list: none); None: every team's and none.
    teams: Sequence[str] | None = None
    # Only conversations with a running promise that was warned about or missed.
    at_risk: bool = False
    # Only what this agent may see (None: everything).
    seen_by: SeenBy | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(ConversationRow.status.in_([s.value for s in self.statuses]))
        if self.assignee_id is not None:
            query = query.where(ConversationRow.assignee_id == self.assignee_id)
        if self.unassigned:
            query = query.where(ConversationRow.assignee_id.is_(None))
        if self.channel:
            query = query.where(ConversationRow.channel == self.channel)
        if self.language:
            query = query.where(ConversationRow.language == self.language)
        if self.teams is not None:
            query = query.where(ConversationRow.team.in_(list(self.teams)))
        if self.tag:
            # Tags are a JSON list; its text form holds each tag in quotes on every dialect.
            query = query.where(cast(ConversationRow.tags, String).like(f'%"{self.tag}"%'))
        if self.conversation_ids is not None:
            query = query.where(ConversationRow.id.in_(list(self.conversation_ids)))
        if self.at_risk:
            query = query.where(ConversationRow.id.in_(_AT_RISK))
        if self.seen_by is not None:
            query = query.where(self.seen_by.clause())
        return query


_AT_RISK = select(SlaTimerRow.conversation_id).where(
    SlaTimerRow.stopped_at.is_(None),
    or_(SlaTimerRow.warned_at.is_not(None), SlaTimerRow.breached_at.is_not(None)),
)


class InboxQueries:
    session: AsyncSession

    async def queue_page(self, where: QueueFilter, *, limit: int = 100) -> list[Conversation]:
        """The queue order: soonest SLA first (none last), then higher priority, then oldest."""
        query = where.apply(select(ConversationRow)).order_by(
            ConversationRow.sla_due_at.is_(None),
            ConversationRow.sla_due_at,
            ConversationRow.priority.desc(),
            ConversationRow.created_at,
            ConversationRow.id,
        )
        rows = await self.session.scalars(query.limit(limit))
        return [conversation_record(r) for r in rows]

    async def alert_levels(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        """``breach`` or ``warning`` for conversations whose running promises were missed
        or are about to be."""
        if not conversation_ids:
            return {}
        rows = await self.session.execute(
            select(
                SlaTimerRow.conversation_id, SlaTimerRow.warned_at, SlaTimerRow.breached_at
            ).where(
                SlaTimerRow.conversation_id.in_(list(conversation_ids)),
                SlaTimerRow.stopped_at.is_(None),
                or_(SlaTimerRow.warned_at.is_not(None), SlaTimerRow.breached_at.is_not(None)),
            )
        )
        levels: dict[int, str] = {}
        for conversation_id, _, breached in rows.all():
            if breached is not None or levels.get(conversation_id) != "breach":
                levels[conversation_id] = "breach" if breached is not None else "warning"
        return levels

    async def queue_count(self, where: QueueFilter) -> int:
        count = await self.session.scalar(
            where.apply(select(func.count()).select_from(ConversationRow))
        )
        return int(count or 0)

    async def assigned_counts(self) -> dict[int, int]:
        """Open conversations each agent owns."""
        rows = await self.session.execute(
            select(ConversationRow.assignee_id, func.count())
            .where(
                ConversationRow.status == ConversationStatus.ASSIGNED.value,
                ConversationRow.assignee_id.is_not(None),
            )
            .group_by(ConversationRow.assignee_id)
        )
        return {int(agent): int(count) for agent, count in rows.all() if agent is not None}

    async def last_messages(
        self, conversation_ids: Sequence[int], *, direction: Direction | None = None
    ) -> dict[int, Message]:
        """The newest message of each conversation (notes aside, or only ``direction``),
        in one query."""
        if not conversation_ids:
            return {}
        wanted = (
            MessageRow.direction == direction.value
            if direction is not None
            else MessageRow.direction != Direction.NOTE.value
        )
        newest = (
            select(func.max(MessageRow.id))
            .where(MessageRow.conversation_id.in_(list(conversation_ids)), wanted)
            .group_by(MessageRow.conversation_id)
        )
        # Core rows (no ORM identity map to fill): they have the same named columns.
        table = MessageRow.__table__
        rows = await self.session.execute(select(table).where(table.c.id.in_(newest)))
        return {r.conversation_id: message_record(as_row(r)) for r in rows.all()}

    async def contacts(self, contact_ids: Sequence[int]) -> dict[int, Contact]:
        if not contact_ids:
            return {}
        rows = await self.session.scalars(
            select(ContactRow).where(ContactRow.id.in_(list(set(contact_ids))))
        )
        return {r.id: contact_record(r) for r in rows}

    async def search(self, text: str, *, limit: int = 200) -> list[int]:
        """Conversations whose messages, contact name, email or channel id contain ``text``."""
        pattern = f"%{text.strip()}%"
        by_message = select(MessageRow.conversation_id).where(MessageRow.text.ilike(pattern))
        contacts = (
            select(ContactRow.id)
            .outerjoin(IdentityRow, IdentityRow.contact_id == ContactRow.id)
            .where(
                or_(
                    ContactRow.display_name.ilike(pattern),
                    ContactRow.email.ilike(pattern),
                    IdentityRow.external_id.ilike(pattern),
                    IdentityRow.display_name.ilike(pattern),
                )
            )
        )
        rows = await self.session.scalars(
            select(ConversationRow.id)
            .where(
                or_(
                    ConversationRow.id.in_(by_message),
                    ConversationRow.contact_id.in_(contacts),
                    ConversationRow.subject.ilike(pattern),
                )
            )
            .order_by(ConversationRow.id.desc())
            .limit(limit)
        )
        return list(rows)
