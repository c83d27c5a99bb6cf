"""What the reports read: conversations of a period, with filters, in few queries."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from router.storage.dialect import epoch_seconds, quarter_hour
from router.storage.models import (
    ConversationRow,
    HandoffRow,
    MessageRow,
    SlaTimerRow,
)

__all__ = ["BotTurns", "ReportFilter", "ReportQueries", "ReportRow", "Turn"]


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
    """One conversation as the reports see it."""

    id: int
    contact_id: int
    channel: str
    status: str
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime
    handed_off: bool
    csat_score: int | None
    csat_comment: str | None
    survey_asked: bool
    # With ``history``: no earlier conversation of the contact (a new contact), and for a
    # conversation never handed off, when the contact next wrote in another one.
    first_of_contact: bool = True
    next_write_at: datetime | None = None


class Turn(NamedTuple):
    """One customer message and what came after it until the next (the gap report's
    unit)."""

    text: str
    choice: str | None  # the offered choice the message picked, if it did
    at: float  # seconds since 1970, UTC
    answered: bool  # the bot answered it with a matched entry
    clarified: bool  # the bot asked which entry was meant
    acknowledged: bool  # the handoff notice came after it


# What followed a customer's message, as bits.
_ANSWERED, _CLARIFIED, _SENT_ACK = 1, 2, 4


class BotTurns(NamedTuple):
    """What the bot did in one conversation, summed up by the database."""

    conversation_id: int
    first_answer_id: int | None  # its first answer of one of the given reasons
    last_thanks_id: int | None  # its last reply to a customer's thanks
    clarifications: int


class ReportQueries:
    session: AsyncSession

    async def report_rows(self, where: ReportFilter, *, history: bool = False) -> list[ReportRow]:
        """The period's conversations; with ``history`` also what the contact did before
        and after (``first_of_contact``, ``next_write_at``), asked of the database per
        conversation so that no other conversation's rows come back."""
        c = ConversationRow
        columns: list[Any] = [
            c.id,
            c.contact_id,
            c.channel,
            c.status,
            c.assignee_id,
            c.created_at,
            c.updated_at,
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
        rows = await self.session.execute(where.apply(select(*columns)).order_by(c.id))
        return [ReportRow(*row) for row in rows.all()]

    @staticmethod
    def _next_write(c: Any) -> Any:
        """When the contact of conversation ``c`` next wrote in another conversation after
        ``c``'s last activity. A message after that moment lies in a conversation updated
        after it too: that narrows the conversations whose messages are looked at."""
        other, m = aliased(ConversationRow), MessageRow
        return (
            select(func.min(m.created_at))
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
        return [(str(ch), int(q), int(n)) for ch, q, n in (await self.session.execute(query)).all()]

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
        return [BotTurns(int(i), a, t, int(n)) for i, a, t, n in await self.session.execute(query)]

    async def choices_taken(self, where: ReportFilter) -> dict[str, int]:
        """Which offered choice customers took, and how often."""
        m = MessageRow
        choice = m.extras["choice"].as_string()
        query = (
            select(choice, func.count())
            .where(m.direction == "in", choice.is_not(None), where.said())
            .group_by(choice)
        )
        return {str(c): int(n) for c, n in (await self.session.execute(query)).all() if c}

    async def report_handoffs(self, where: ReportFilter) -> list[tuple[int, str, datetime]]:
        """Handoffs of the period's conversations: (conversation, reason, when)."""
        h = HandoffRow
        query = (
            select(h.conversation_id, h.reason, h.created_at)
            .where(where.has(h.conversation_id))
            .order_by(h.id)
        )
        return [(int(i), str(r), at) for i, r, at in (await self.session.execute(query)).all()]

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
            for i, policy, metric, started, stopped, outcome, late in (
                await self.session.execute(query)
            ).all()
        ]

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
        opened: list[datetime] = []
        closed: list[datetime] = []
        for began, ended in (await self.session.execute(query)).all():
            if began is None or (ended is not None and ended < began):
                continue  # never open with people (a resolution older than the handoff)
            opened.append(began)
            if ended is not None:
                closed.append(ended)
        opened.sort()
        closed.sort()
        # Open at a moment: opened by then, less those closed by then (a conversation
        # is closed only after it opened).
        return [bisect_right(opened, t) - bisect_right(closed, t) for t in moments]

    async def turns_in(self, where: ReportFilter) -> dict[int, list[Turn]]:
        """The period's conversations as turns, in order: each customer message with what
        the bot and the desk did after it (until the customer's next message).

        Two plain queries (no ORM objects; there is a row per message): the customer's
        messages, and the bot's answers and clarifications and the handoff notices
        reduced to a code, placed into their turns here by id. Cheaper than the
        database numbering turns with a window function, which on SQLite costs more
        than reading both."""
        m = MessageRow
        reason = m.extras["reason"].as_string()
        code = case(
            (m.kind == "clarify", _CLARIFIED),
            (m.kind == "ack", _SENT_ACK),
            (reason == "match", _ANSWERED),
            else_=0,
        )
        connection = await self.session.connection()
        said = await connection.execute(
            select(
                m.conversation_id,
                m.id,
                m.text,
                m.extras["choice"].as_string(),
                epoch_seconds(m.created_at),
            )
            .where(where.said(), m.direction == "in")
            .order_by(m.conversation_id, m.id)
        )
        rows: dict[int, list[Any]] = {}
        ids: dict[int, list[int]] = {}
        for row in said.all():
            rows.setdefault(row[0], []).append(row)
            ids.setdefault(row[0], []).append(row[1])
        flags: dict[int, list[int]] = {c: [0] * len(found) for c, found in ids.items()}
        done = await connection.execute(
            select(m.conversation_id, m.id, code).where(
                where.said(),
                or_(
                    and_(m.author_kind == "bot", m.kind.in_(["answer", "clarify"])),
                    and_(m.author_kind == "system", m.kind == "ack"),
                ),
            )
        )
        for conversation_id, message_id, what in done.all():
            if what and conversation_id in ids:
                # The turn of the customer's last message before this one (none before
                # their first message).
                index = bisect_left(ids[conversation_id], message_id) - 1
                if index >= 0:
                    flags[conversation_id][index] |= what
        return {
            conversation_id: [
                Turn(
                    text,
                    choice,
                    seconds,
                    bool(f & _ANSWERED),
                    bool(f & _CLARIFIED),
                    bool(f & _SENT_ACK),
                )
                for (_, _, text, choice, seconds), f in zip(
                    found, flags[conversation_id], strict=True
                )
            ]
            for conversation_id, found in rows.items()
        }

    async def first_agent_replies(self, where: ReportFilter) -> dict[int, str]:
        """Each of the period's conversations' first agent reply of some substance."""
        m = MessageRow
        first = (
            select(func.min(m.id))
            .where(
                where.said(),
                m.author_kind == "agent",
                m.direction == "out",
                func.length(m.text) > 15,
            )
            .group_by(m.conversation_id)
        )
        rows = await self.session.execute(
            select(m.conversation_id, m.text).where(m.id.in_(first.scalar_subquery()))
        )
        return {int(i): str(t) for i, t in rows.all()}

    async def handoff_candidates(self, where: ReportFilter) -> dict[int, str]:
        """The entry the bot came closest to at each conversation's first handoff."""
        found: dict[int, str] = {}
        rows = await self.session.execute(
            select(HandoffRow.conversation_id, HandoffRow.candidates)
            .where(where.has(HandoffRow.conversation_id))
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
