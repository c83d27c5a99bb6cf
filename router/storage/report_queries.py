"""What the reports read: conversations of a period, with filters, in few queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import (
    ConversationRow,
    HandoffRow,
    MessageRow,
    SlaTimerRow,
)

__all__ = ["ReportFilter", "ReportQueries", "ReportRow", "Said"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFilter:
    """Conversations opened in [start, end), narrowed by channel, agent, language, tag."""

    start: datetime
    end: datetime
    channel: str | None = None
    agent_id: int | None = None
    language: str | None = None
    tag: str | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(
            ConversationRow.created_at >= self.start, ConversationRow.created_at < self.end
        )
        if self.channel:
            query = query.where(ConversationRow.channel == self.channel)
        if self.agent_id is not None:
            query = query.where(ConversationRow.assignee_id == self.agent_id)
        if self.language:
            query = query.where(ConversationRow.language == self.language)
        if self.tag:
            query = query.where(cast(ConversationRow.tags, String).like(f'%"{self.tag}"%'))
        return query


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One conversation as the reports see it."""

    id: int
    contact_id: int
    channel: str
    status: str
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime
    handed_off_at: datetime | None
    resolved_at: datetime | None
    csat_score: int | None
    csat_comment: str | None
    survey_asked: bool


class Said(NamedTuple):
    """A message as the gap report reads it."""

    direction: str
    author: str
    kind: str | None
    text: str
    extras: dict[str, Any]
    at: datetime


class ReportQueries:
    session: AsyncSession

    async def report_rows(self, where: ReportFilter) -> list[ReportRow]:
        c = ConversationRow
        query = where.apply(
            select(
                c.id,
                c.contact_id,
                c.channel,
                c.status,
                c.assignee_id,
                c.created_at,
                c.updated_at,
                c.handed_off_at,
                c.resolved_at,
                c.csat_score,
                c.csat_comment,
                c.survey_asked_at.is_not(None),
            )
        ).order_by(c.id)
        rows = await self.session.execute(query)
        return [ReportRow(*row) for row in rows.all()]

    async def first_conversation_of(self, where: ReportFilter) -> dict[int, datetime]:
        """When each contact of the period's conversations first wrote (new or returning)."""
        c = ConversationRow
        # Not correlated: the same table, but a list of its own.
        contacts = where.apply(select(c.contact_id)).correlate(None).scalar_subquery()
        rows = await self.session.execute(
            select(c.contact_id, func.min(c.created_at))
            .where(c.contact_id.in_(contacts))
            .group_by(c.contact_id)
        )
        return {int(contact): first for contact, first in rows.all()}

    async def inbound_times(self, where: ReportFilter) -> list[tuple[int, str, datetime]]:
        """Customer messages of the period's conversations: (conversation, channel, when)."""
        m = MessageRow
        query = where.apply(
            select(m.conversation_id, ConversationRow.channel, m.created_at)
            .join(ConversationRow, ConversationRow.id == m.conversation_id)
            .where(m.direction == "in")
        )
        return [(int(i), str(ch), at) for i, ch, at in (await self.session.execute(query)).all()]

    async def bot_messages(self, where: ReportFilter) -> list[tuple[int, str | None, str | None]]:
        """The bot's messages: (conversation, kind, reason)."""
        m = MessageRow
        query = where.apply(
            select(m.conversation_id, m.kind, m.extras["reason"].as_string())
            .join(ConversationRow, ConversationRow.id == m.conversation_id)
            .where(m.author_kind == "bot")
        )
        return [(int(i), k, r) for i, k, r in (await self.session.execute(query)).all()]

    async def choices_taken(self, where: ReportFilter) -> list[str]:
        m = MessageRow
        query = where.apply(
            select(m.extras["choice"].as_string())
            .join(ConversationRow, ConversationRow.id == m.conversation_id)
            .where(m.direction == "in", m.extras["choice"].as_string().is_not(None))
        )
        return [str(c) for c in (await self.session.scalars(query)).all() if c]

    async def report_handoffs(self, where: ReportFilter) -> list[tuple[int, str, datetime]]:
        """Handoffs of the period's conversations: (conversation, reason, when)."""
        h = HandoffRow
        query = where.apply(
            select(h.conversation_id, h.reason, h.created_at).join(
                ConversationRow, ConversationRow.id == h.conversation_id
            )
        ).order_by(h.id)
        return [(int(i), str(r), at) for i, r, at in (await self.session.execute(query)).all()]

    async def report_timers(
        self, where: ReportFilter
    ) -> list[tuple[int, str, str, datetime, datetime | None, str | None, float | None]]:
        """Promises of the period's conversations: (conversation, policy, metric, started,
        stopped, outcome, late seconds)."""
        t = SlaTimerRow
        query = where.apply(
            select(
                t.conversation_id,
                t.policy,
                t.metric,
                t.started_at,
                t.stopped_at,
                t.outcome,
                t.late_seconds,
            ).join(ConversationRow, ConversationRow.id == t.conversation_id)
        ).order_by(t.id)
        return [tuple(row) for row in (await self.session.execute(query)).all()]

    async def contact_messages(
        self, where: ReportFilter, since: datetime, until: datetime
    ) -> dict[int, list[tuple[int, datetime]]]:
        """The customer messages written in [since, until], on any channel, by contacts
        of the period's bot-only conversations: contact → [(conversation, when)]."""
        m, c = MessageRow, ConversationRow
        contacts = where.apply(select(c.contact_id).where(c.handed_off_at.is_(None)))
        rows = await self.session.execute(
            select(c.contact_id, m.conversation_id, m.created_at)
            .join(c, c.id == m.conversation_id)
            .where(
                c.contact_id.in_(contacts.correlate(None).scalar_subquery()),
                m.direction == "in",
                m.created_at > since,
                m.created_at <= until,
            )
        )
        found: dict[int, list[tuple[int, datetime]]] = {}
        for contact, conversation, at in rows.all():
            found.setdefault(int(contact), []).append((int(conversation), at))
        return found

    async def backlog_at(self, moments: Sequence[datetime], where: ReportFilter) -> list[int]:
        """Conversations with people (handed off, not resolved) at each moment, from one
        query over the conversations that were open with people during the period."""
        if not moments:
            return []
        c = ConversationRow
        query = select(c.handed_off_at, c.resolved_at).where(
            c.handed_off_at.is_not(None),
            c.handed_off_at <= max(moments),
            (c.resolved_at.is_(None)) | (c.resolved_at > min(moments)),
        )
        if where.channel:
            query = query.where(c.channel == where.channel)
        if where.agent_id is not None:
            query = query.where(c.assignee_id == where.agent_id)
        if where.language:
            query = query.where(c.language == where.language)
        if where.tag:
            query = query.where(cast(c.tags, String).like(f'%"{where.tag}"%'))
        spans: list[tuple[datetime, datetime | None]] = [
            (opened, closed)
            for opened, closed in (await self.session.execute(query)).all()
            if opened is not None
        ]
        counts = []
        for moment in moments:
            counts.append(
                sum(
                    1
                    for opened, closed in spans
                    if opened <= moment and (closed is None or closed > moment)
                )
            )
        return counts

    async def said_in(self, conversation_ids: Sequence[int]) -> dict[int, list[Said]]:
        """What was said in these conversations (notes aside), in order: just the columns
        the gap report reads, without building whole records."""
        m = MessageRow
        found: dict[int, list[Said]] = {}
        for start in range(0, len(conversation_ids), 5000):
            chunk = list(conversation_ids[start : start + 5000])
            rows = await self.session.execute(
                select(
                    m.conversation_id,
                    m.direction,
                    m.author_kind,
                    m.kind,
                    m.text,
                    m.extras,
                    m.created_at,
                )
                .where(m.conversation_id.in_(chunk), m.direction != "note")
                .order_by(m.conversation_id, m.id)
            )
            for conversation_id, direction, author, kind, text, extras, at in rows.all():
                found.setdefault(conversation_id, []).append(
                    Said(direction, author, kind, text, extras or {}, at)
                )
        return found

    async def handoff_candidates(self, conversation_ids: Sequence[int]) -> dict[int, str]:
        """The entry the bot came closest to at each conversation's first handoff."""
        found: dict[int, str] = {}
        for start in range(0, len(conversation_ids), 5000):
            chunk = list(conversation_ids[start : start + 5000])
            rows = await self.session.execute(
                select(HandoffRow.conversation_id, HandoffRow.candidates)
                .where(HandoffRow.conversation_id.in_(chunk))
                .order_by(HandoffRow.id)
            )
            for conversation_id, candidates in rows.all():
                if conversation_id not in found and candidates:
                    best = candidates[0]
                    if isinstance(best, dict) and isinstance(best.get("id"), str):
                        found[int(conversation_id)] = best["id"]
        return found

    async def count_all(self) -> tuple[int, int]:
        """Plain counts of conversations and messages (the benchmark's floor)."""
        conversations = await self.session.scalar(select(func.count()).select_from(ConversationRow))
        messages = await self.session.scalar(select(func.count()).select_from(MessageRow))
        return int(conversations or 0), int(messages or 0)
