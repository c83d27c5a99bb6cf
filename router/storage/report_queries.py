"""What the reports read: conversations of a period, with filters, in few queries."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from router.conversations import Direction
from router.storage.dialect import epoch_seconds, quarter_hour
from router.storage.models import (
    ConversationRow,
    HandoffRow,
    MessageRow,
    SlaTimerRow,
)

__all__ = ["BotTurns", "ReportFilter", "ReportQueries", "ReportRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFilter:
    """Conversations opened in [start, end), narrowed by channel, agent, language, tag,
    team."""

    start: datetime
    end: datetime
    channel: str | None = None
    agent_id: int | None = None
    language: str | None = None
    tag: str | None = None
    team: str | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(
            ConversationRow.created_at >= self.start, ConversationRow.created_at < self.end
        )
        return self.narrow(query)

    def narrow(self, query: Any) -> Any:
        """``query`` over conversations, narrowed by everything but the period."""
        c = ConversationRow
        if self.channel:
            query = query.where(c.channel == self.channel)
        if self.agent_id is not None:
            query = query.where(c.assignee_id == self.agent_id)
        if self.language:
            query = query.where(c.language == self.language)
        if self.tag:
            query = query.where(cast(c.tags, String).like(f'%"{self.tag}"%'))
        if self.team:
            query = query.where(c.team == self.team)
        return query

    def has(self, conversation_id: Any) -> Any:
        """``conversation_id IN`` the period's conversations: a condition for the rows
        that hang off conversations (messages, handoffs, promises). A subquery rather
        than a join, so that SQLite starts from the period's conversations (by their
        ``created_at`` index) instead of walking every message."""
        ids = self.apply(select(ConversationRow.id)).correlate(None).scalar_subquery()
        return conversation_id.in_(ids)

    def said(self) -> Any:
        """The messages of the period's conversations: ``has`` plus the bound that no
        message is older than its conversation, which lets PostgreSQL read the period's
        messages by their ``created_at`` index instead of scanning them all."""
        return and_(self.has(MessageRow.conversation_id), MessageRow.created_at >= self.start)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One conversation as the reports see it; its times in seconds since 1970 (UTC), as
    a report reads thousands of them and turns none into a date."""

    id: int
    contact_id: int
    channel: str
    status: str
    assignee_id: int | None  # the owner, or the agent who last answered
    created: float
    updated: float
    handed_off: bool
    csat_score: int | None
    csat_comment: str | None
    survey_asked: bool
    # With ``history``: no earlier conversation of the contact (a new contact), and for a
    # conversation never handed off, when the contact next wrote in another one.
    first_of_contact: bool = True
    next_write: float | None = None
    # Its gap questions were found since it last changed (router.reporting.kb_gaps).
    gaps_scanned: bool = False


class BotTurns(NamedTuple):
    """What the bot did in one conversation, summed up by the database."""

    conversation_id: int
    first_answer_id: int | None  # its first answer of one of the given reasons
    last_thanks_id: int | None  # its last reply to a customer's thanks
    clarifications: int


class ReportQueries:
    session: AsyncSession

    async def _rows(self, query: Any) -> Sequence[Any]:
        """``query``'s rows, read on the unit's connection: plain rows, without the
        ORM's loading machinery (a report reads tens of thousands)."""
        connection = await self.session.connection()
        return (await connection.execute(query)).all()

    async def report_rows(self, where: ReportFilter, *, history: bool = False) -> list[ReportRow]:
        """The period's conversations; with ``history`` also what the contact did before
        and after (``first_of_contact``, ``next_write``), asked of the database per
        conversation so that no other conversation's rows come back."""
        c = ConversationRow
        columns: list[Any] = [
            c.id,
            c.contact_id,
            c.channel,
            c.status,
            # Who handled it: its owner, or (put back in the queue since) the agent who
            # last answered the customer.
            func.coalesce(c.assignee_id, self._last_agent(c)),
            epoch_seconds(c.created_at),
            epoch_seconds(c.updated_at),
            c.handed_off_at.is_not(None),
            c.csat_score,
            c.csat_comment,
            c.survey_asked_at.is_not(None),
        ]
        if history:
            earlier = aliased(ConversationRow)
            columns.append(
                ~select(earlier.id)
                .where(earlier.contact_id == c.contact_id, earlier.created_at < c.created_at)
                .correlate(c)
                .exists()
            )
            columns.append(case((c.handed_off_at.is_(None), self._next_write(c))))
        columns.append(and_(c.gaps_scanned_at.is_not(None), c.gaps_scanned_at >= c.updated_at))
        rows = await self._rows(where.apply(select(*columns)).order_by(c.id))
        # Without history the two columns it would have read take their defaults.
        plain = [] if history else [True, None]
        found = []
        for row in rows:
            values: Any = (*row[:-1], *plain, row[-1])
            found.append(ReportRow(*values))
        return found

    @staticmethod
    def _last_agent(c: Any) -> Any:
        m = MessageRow
        return (
            select(m.author_agent_id)
            .where(
                m.conversation_id == c.id,
                m.author_agent_id.is_not(None),
                m.direction == Direction.OUT.value,
            )
            .order_by(m.id.desc())
            .limit(1)
            .correlate(c)
            .scalar_subquery()
        )

    @staticmethod
    def _next_write(c: Any) -> Any:
        """When the contact of conversation ``c`` next wrote in another conversation after
        ``c``'s last activity. A message after that moment lies in a conversation updated
        after it too: that narrows the conversations whose messages are looked at."""
        other, m = aliased(ConversationRow), MessageRow
        return (
            select(epoch_seconds(func.min(m.created_at)))
            .join(other, other.id == m.conversation_id)
            .where(
                other.contact_id == c.contact_id,
                other.id != c.id,
                other.updated_at > c.updated_at,
                m.direction == "in",
                m.created_at > c.updated_at,
            )
            .correlate(c)
            .scalar_subquery()
        )

    async def inbound_by_quarter(self, where: ReportFilter) -> list[tuple[str, int, int]]:
        """Customer messages of the period's conversations counted by the channel they
        came in on and quarter hour since 1970 (UTC): (channel, quarter, count). Every
        time zone's local hours are made of whole quarters, so the caller places them in
        its own zone."""
        m = MessageRow
        quarter = quarter_hour(m.created_at)
        query = (
            select(m.channel, quarter, func.count())
            .where(m.direction == "in", where.said())
            .group_by(m.channel, quarter)
        )
        return [(str(ch), int(q), int(n)) for ch, q, n in await self._rows(query)]

    async def inbound_between(
        self, where: ReportFilter, spans: Sequence[tuple[datetime, datetime]]
    ) -> list[int]:
        """The period's conversations with a customer message in one of the ``[from, to)``
        spans (a heatmap cell's drill-down), by id."""
        if not spans:
            return []
        m = MessageRow
        query = (
            select(m.conversation_id)
            .distinct()
            .where(
                where.said(),
                m.direction == "in",
                or_(*(and_(m.created_at >= a, m.created_at < b) for a, b in spans)),
            )
            .order_by(m.conversation_id)
        )
        return [int(i) for i in (await self.session.scalars(query)).all()]

    async def bot_turns(self, where: ReportFilter, answer_reasons: Sequence[str]) -> list[BotTurns]:
        """The bot's messages of the period's conversations, summed per conversation."""
        m = MessageRow
        reason = m.extras["reason"].as_string()
        answer = and_(m.kind == "answer", reason.in_(list(answer_reasons)))
        query = (
            select(
                m.conversation_id,
                func.min(case((answer, m.id))),
                func.max(case((reason == "thanks", m.id))),
                func.count(case((m.kind == "clarify", 1))),
            )
            .where(m.author_kind == "bot", where.said())
            .group_by(m.conversation_id)
        )
        return [BotTurns(int(i), a, t, int(n)) for i, a, t, n in await self._rows(query)]

    async def choices_taken(self, where: ReportFilter) -> dict[str, int]:
        """Which offered choice customers took, and how often."""
        m = MessageRow
        choice = m.extras["choice"].as_string()
        query = (
            select(choice, func.count())
            .where(m.direction == "in", choice.is_not(None), where.said())
            .group_by(choice)
        )
        return {str(c): int(n) for c, n in await self._rows(query) if c}

    async def report_handoffs(self, where: ReportFilter) -> list[tuple[int, str]]:
        """Handoffs of the period's conversations, in order: (conversation, reason)."""
        h = HandoffRow
        query = (
            select(h.conversation_id, h.reason).where(where.has(h.conversation_id)).order_by(h.id)
        )
        return [(int(i), str(r)) for i, r in await self._rows(query)]

    async def report_timers(
        self, where: ReportFilter
    ) -> list[tuple[int, str, str, datetime, datetime | None, str | None, float | None]]:
        """Promises of the period's conversations: (conversation, policy, metric, started,
        stopped, outcome, late seconds)."""
        t = SlaTimerRow
        query = (
            select(
                t.conversation_id,
                t.policy,
                t.metric,
                t.started_at,
                t.stopped_at,
                t.outcome,
                t.late_seconds,
            )
            .where(where.has(t.conversation_id))
            .order_by(t.id)
        )
        return [
            (int(i), str(policy), str(metric), started, stopped, outcome, late)
            for i, policy, metric, started, stopped, outcome, late in await self._rows(query)
        ]

    async def backlog_at(self, moments: Sequence[datetime], where: ReportFilter) -> list[int]:
        """Conversations with people (handed off, not resolved) at each moment, from one
        query over the conversations that were open with people during the period."""
        if not moments:
            return []
        c = ConversationRow
        query = select(epoch_seconds(c.handed_off_at), epoch_seconds(c.resolved_at)).where(
            c.handed_off_at.is_not(None),
            c.handed_off_at <= max(moments),
            (c.resolved_at.is_(None)) | (c.resolved_at > min(moments)),
        )
        query = where.narrow(query)
        opened: list[float] = []
        closed: list[float] = []
        for began, ended in await self._rows(query):
            if began is None or (ended is not None and ended < began):
                continue  # never open with people (a resolution older than the handoff)
            opened.append(began)
            if ended is not None:
                closed.append(ended)
        opened.sort()
        closed.sort()
        # Open at a moment: opened by then, less those closed by then (a conversation
        # is closed only after it opened).
        return [
            bisect_right(opened, t) - bisect_right(closed, t)
            for t in (moment.timestamp() for moment in moments)
        ]

    async def count_all(self) -> tuple[int, int]:
        """Plain counts of conversations and messages (the benchmark's floor)."""
        conversations = await self.session.scalar(select(func.count()).select_from(ConversationRow))
        messages = await self.session.scalar(select(func.count()).select_from(MessageRow))
        return int(conversations or 0), int(messages or 0)
