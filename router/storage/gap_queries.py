"""What the knowledge-base gap report reads and keeps: conversations as turns, the
gap questions found in them (kept per conversation by the gap scan), the agents'
answers and the entries the bot came closest to."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.dialect import epoch_seconds
from router.storage.models import ConversationRow, GapQuestionRow, HandoffRow, MessageRow
from router.storage.report_queries import ReportFilter

__all__ = ["GapQueries", "GapScanDue", "ScannedGap", "Turn"]


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


class ScannedGap(NamedTuple):
    """A gap question the scan found in a conversation's messages."""

    source: str  # unsure, asked_again or clarify_unpicked
    text: str
    at: datetime


class GapScanDue(NamedTuple):
    """A conversation whose gap questions are to be found (again)."""

    conversation_id: int
    updated_at: datetime
    scanned_at: datetime | None


class GapQueries:
    session: AsyncSession

    async def turns_of(self, conversation_ids: Sequence[int]) -> dict[int, list[Turn]]:
        """These conversations as turns, in order: each customer message with what the
        bot and the desk did after it (until the customer's next message)."""
        found: dict[int, list[Turn]] = {}
        for start in range(0, len(conversation_ids), 5000):
            chunk = list(conversation_ids[start : start + 5000])
            found.update(await self._turns(MessageRow.conversation_id.in_(chunk)))
        return found

    async def handed_off_for(
        self, conversation_ids: Sequence[int], reasons: Sequence[str]
    ) -> set[int]:
        """Which of these conversations were handed off for one of ``reasons``."""
        h = HandoffRow
        found: set[int] = set()
        for start in range(0, len(conversation_ids), 5000):
            chunk = list(conversation_ids[start : start + 5000])
            rows = await self.session.execute(
                select(h.conversation_id)
                .where(h.conversation_id.in_(chunk), h.reason.in_(list(reasons)))
                .distinct()
            )
            found.update(int(i) for (i,) in rows.all())
        return found

    async def unkept_turns(self, where: ReportFilter, *, low_rating: int) -> dict[int, list[Turn]]:
        """The turns of the period's conversations whose gaps a report must find itself:
        changed since their last gap scan, or rated ``low_rating`` or lower (a rating
        does not change the conversation, so the scan cannot know of it)."""
        c = ConversationRow
        fresh = and_(c.gaps_scanned_at.is_not(None), c.gaps_scanned_at >= c.updated_at)
        ids = (
            where.apply(select(c.id))
            .where(or_(~fresh, c.csat_score <= low_rating))
            .scalar_subquery()
        )
        return await self._turns(
            and_(MessageRow.conversation_id.in_(ids), MessageRow.created_at >= where.start)
        )

    async def _turns(self, messages: Any) -> dict[int, list[Turn]]:
        """The turns of the conversations of the messages that match ``messages``.

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
            .where(messages, m.direction == "in")
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
                messages,
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

    async def gap_scan_due(self, settled_before: datetime, limit: int) -> list[GapScanDue]:
        """Conversations quiet since ``settled_before`` that changed after their last
        gap scan (or never had one), oldest first."""
        c = ConversationRow
        rows = await self.session.execute(
            select(c.id, c.updated_at, c.gaps_scanned_at)
            .where(
                c.updated_at <= settled_before,
                (c.gaps_scanned_at.is_(None)) | (c.gaps_scanned_at < c.updated_at),
            )
            .order_by(c.id)
            .limit(limit)
        )
        return [GapScanDue(int(i), at, scanned) for i, at, scanned in rows.all()]

    async def store_gap_scan(self, due: GapScanDue, found: Sequence[ScannedGap]) -> bool:
        """Keep what a scan of ``due`` found, unless the conversation changed since it
        was read or another node stored its scan first (a conditional UPDATE: False)."""
        c = ConversationRow
        unchanged = (
            c.gaps_scanned_at.is_(None)
            if due.scanned_at is None
            else c.gaps_scanned_at == due.scanned_at
        )
        claimed = await self.session.execute(
            update(c)
            .where(c.id == due.conversation_id, c.updated_at == due.updated_at, unchanged)
            .values(gaps_scanned_at=due.updated_at)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        g = GapQuestionRow
        await self.session.execute(delete(g).where(g.conversation_id == due.conversation_id))
        if found:
            await self.session.execute(
                insert(g),
                [
                    {
                        "conversation_id": due.conversation_id,
                        "source": q.source,
                        "text": q.text,
                        "at": q.at,
                    }
                    for q in found
                ],
            )
        return True

    async def scanned_gaps(self, where: ReportFilter) -> dict[int, list[ScannedGap]]:
        """The kept gap questions of the period's conversations, by conversation (those
        of conversations changed since their scan too: the caller knows which)."""
        g = GapQuestionRow
        rows = await self.session.execute(
            select(g.conversation_id, g.source, g.text, g.at)
            .where(where.has(g.conversation_id))
            .order_by(g.conversation_id, g.id)
        )
        found: dict[int, list[ScannedGap]] = {}
        for conversation_id, source, text, at in rows.all():
            found.setdefault(int(conversation_id), []).append(ScannedGap(source, text, at))
        return found
