"""Past cases for agent assist: conversations people resolved, each as the question
that brought the customer to a person and the reply that resolved it."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.signals import asks_for_human, is_greeting, is_thanks
from router.conversations import AuthorKind, ConversationStatus, Direction
from router.storage.inbox_queries import SeenBy
from router.storage.models import ConversationRow, MessageRow

__all__ = ["CaseQueries", "PastCase", "question_of", "says_nothing"]

# The customer's last few messages before the handoff are the question.
_QUESTION_MESSAGES = 3
_QUESTION_CHARS = 600
# A request for a person this short says nothing else ("转人工客服", "I want a human").
_BARE_REQUEST_CHARS = 8
_BARE_REQUEST_WORDS = 8


class PastCase(NamedTuple):
    """A conversation a person resolved, as assist reads it."""

    conversation_id: int
    question: str
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
                    question=question_of(texts),
                    reply=reply,
                    resolved_at=case.resolved_at,
                    csat_score=case.csat_score,
                )
            )
        return cases


def question_of(texts: list[str]) -> str:
    """What a customer asked, from their messages up to the handoff: the last few that
    say something of the matter (not "hello", "thanks" or a bare "转人工")."""
    meant = [t.strip() for t in texts if not says_nothing(t.strip())] or texts[:1]
    return "\n".join(meant[-_QUESTION_MESSAGES:])[-_QUESTION_CHARS:]


def says_nothing(text: str) -> bool:
    """A greeting, a thank-you or a bare request for a person: nothing of the matter."""
    return (
        not text or is_greeting(text) or is_thanks(text) or (_short(text) and asks_for_human(text))
    )


def _short(text: str) -> bool:
    """Short enough that a request for a person in it is all it says."""
    if any("\u3400" <= ch <= "\u9fff" for ch in text):
        return len(text) <= _BARE_REQUEST_CHARS
    return len(text.split()) <= _BARE_REQUEST_WORDS
