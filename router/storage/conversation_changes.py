"""Every UPDATE of a conversation's row. Its state changes (hand-off, claim, assign,
transfer, resolve, reopen; tags, priority, rating) are conditional where two writers could
race, and only ``router.desk.transitions`` calls them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelAddress
from router.conversations import CLAIMABLE, ConversationStatus, Priority
from router.storage.models import ConversationRow

__all__ = ["ConversationChanges"]

# The statements every message runs, built once: their values are parameters.
_TOUCH = (
    update(ConversationRow)
    .where(ConversationRow.id == bindparam("conversation_id"))
    .values(
        reply_channel=bindparam("reply_channel"),
        reply_recipient=bindparam("reply_recipient"),
        reply_thread=bindparam("reply_thread"),
        updated_at=bindparam("updated_at", type_=ConversationRow.updated_at.type),
        # Kept when the message brought none.
        language=func.coalesce(bindparam("new_language", type_=String), ConversationRow.language),
        bot_misses=func.coalesce(
            bindparam("new_misses", type_=Integer), ConversationRow.bot_misses
        ),
    )
)


class ConversationChanges:
    session: AsyncSession

    async def touch_conversation(
        self,
        conversation_id: int,
        *,
        reply_to: ChannelAddress,
        language: str | None,
        now: datetime,
        bot_misses: int | None = None,
    ) -> None:
        await self.session.execute(
            _TOUCH,
            {
                "conversation_id": conversation_id,
                "reply_channel": reply_to.channel,
                "reply_recipient": reply_to.recipient_id,
                "reply_thread": reply_to.thread_id,
                "updated_at": now,
                "new_language": language or None,
                "new_misses": bot_misses,
            },
            execution_options={"synchronize_session": False},
        )

    async def hand_off(
        self,
        conversation_id: int,
        *,
        priority: Priority,
        sla_due_at: datetime | None,
        now: datetime,
        from_status: ConversationStatus = ConversationStatus.BOT,
        team: str | None = None,
    ) -> bool:
        """The conversation goes to the human queue (``team``'s; None: everyone's),
        unowned, from ``from_status`` (the bot's, or resolved when it is reopened); False
        if it is not in that state."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status == from_status.value,
            )
            .values(
                status=ConversationStatus.QUEUED.value,
                assignee_id=None,
                priority=priority.value,
                sla_due_at=sla_due_at,
                handed_off_at=now,
                resolved_at=None,
                updated_at=now,
                team=team,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim(self, conversation_id: int, *, agent_id: int, now: datetime) -> bool:
        """Atomically take an unowned conversation; False if someone else owns it."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.assignee_id.is_(None),
                ConversationRow.status.in_([s.value for s in CLAIMABLE]),
            )
            .values(
                status=ConversationStatus.ASSIGNED.value,
                assignee_id=agent_id,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_first_response(self, conversation_id: int, now: datetime) -> None:
        await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.first_response_at.is_(None),
            )
            .values(first_response_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def resolve(
        self, conversation_id: int, now: datetime, *, assignee_id: int | None = None
    ) -> bool:
        """Close an open conversation (owned by ``assignee_id`` when given); False if it
        was resolved already or someone else owns it now."""
        query = update(ConversationRow).where(
            ConversationRow.id == conversation_id,
            ConversationRow.status != ConversationStatus.RESOLVED.value,
        )
        if assignee_id is not None:
            query = query.where(ConversationRow.assignee_id == assignee_id)
        result = await self.session.execute(
            query.values(
                status=ConversationStatus.RESOLVED.value, resolved_at=now, updated_at=now
            ).execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _set(self, conversation_id: int, **values: Any) -> None:
        """An unconditional UPDATE of the row (bookkeeping, not a change of hands)."""
        await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def set_tags(self, conversation_id: int, tags: Sequence[str], now: datetime) -> None:
        await self._set(conversation_id, tags=list(tags), updated_at=now)

    async def set_priority(self, conversation_id: int, priority: Priority, now: datetime) -> None:
        await self._set(conversation_id, priority=priority.value, updated_at=now)

    async def assign(
        self,
        conversation_id: int,
        *,
        expected: int | None,
        agent_id: int | None,
        now: datetime,
    ) -> bool:
        """Give an open conversation owned by ``expected`` (None: nobody) to ``agent_id``
        (None: back to the queue). False if it is resolved or its owner changed meanwhile:
        a claim made a moment earlier is never overwritten."""
        status = ConversationStatus.QUEUED if agent_id is None else ConversationStatus.ASSIGNED
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status != ConversationStatus.RESOLVED.value,
                _owned_by(expected),
            )
            .values(assignee_id=agent_id, status=status.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_team(
        self, conversation_id: int, *, team: str | None, expected: int | None, now: datetime
    ) -> bool:
        """Move an open conversation owned by ``expected`` to ``team``'s queue (None:
        everyone's), unowned; False if it is resolved or its owner changed meanwhile."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status.in_(
                    [ConversationStatus.QUEUED.value, ConversationStatus.ASSIGNED.value]
                ),
                _owned_by(expected),
            )
            .values(
                team=team,
                assignee_id=None,
                status=ConversationStatus.QUEUED.value,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def reopen(
        self,
        conversation_id: int,
        *,
        agent_id: int | None,
        sla_due_at: datetime | None,
        now: datetime,
    ) -> bool:
        """Open a resolved conversation again; False if it was not resolved."""
        status = ConversationStatus.QUEUED if agent_id is None else ConversationStatus.ASSIGNED
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.status == ConversationStatus.RESOLVED.value,
            )
            .values(
                status=status.value,
                assignee_id=agent_id,
                resolved_at=None,
                sla_due_at=sla_due_at,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_promise_fields(self, conversation_id: int, **values: Any) -> None:
        """sla_policy, waiting_since, survey_asked_at, follow_up_at, priority."""
        allowed = {"sla_policy", "waiting_since", "survey_asked_at", "follow_up_at", "priority"}
        assert set(values) <= allowed, set(values) - allowed
        await self._set(conversation_id, **values)

    async def record_rating(
        self, conversation_id: int, *, score: int, comment: str | None, now: datetime
    ) -> bool:
        """The first rating after the survey counts; False if already rated or never asked."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.survey_asked_at.is_not(None),
                ConversationRow.csat_score.is_(None),
            )
            .values(csat_score=score, csat_comment=comment, csat_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_rating_comment(self, conversation_id: int, comment: str) -> bool:
        result = await self.session.execute(
            update(ConversationRow)
            .where(
                ConversationRow.id == conversation_id,
                ConversationRow.csat_score.is_not(None),
                ConversationRow.csat_comment.is_(None),
            )
            .values(csat_comment=comment)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _owned_by(expected: int | None) -> Any:
    """The conversation is still owned by ``expected`` (None: by nobody)."""
    if expected is None:
        return ConversationRow.assignee_id.is_(None)
    return ConversationRow.assignee_id == expected
