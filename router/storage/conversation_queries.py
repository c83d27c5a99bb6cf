"""Finding, listing and reading conversations (their changes: ``conversation_changes``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelAddress
from router.conversations import ConversationStatus, Direction, Priority
from router.storage.inbox_queries import SeenBy
from router.storage.mapping import conversation_record
from router.storage.models import ConversationRow, IdentityRow, MessageRow
from router.storage.records import Conversation

__all__ = ["ConversationQueries"]

# The statements every message runs, built once: their values are parameters.
_OPEN_CONVERSATION = (
    select(ConversationRow)
    .where(
        ConversationRow.channel == bindparam("channel"),
        ConversationRow.thread_key == bindparam("thread_key"),
        ConversationRow.status != ConversationStatus.RESOLVED.value,
    )
    .order_by(ConversationRow.id.desc())
    .limit(1)
)


class ConversationQueries:
    session: AsyncSession

    async def open_conversation(self, channel: str, thread_key: str) -> Conversation | None:
        row = await self.session.scalar(
            _OPEN_CONVERSATION, {"channel": channel, "thread_key": thread_key}
        )
        return None if row is None else conversation_record(row)

    async def create_conversation(
        self,
        *,
        contact_id: int,
        address: ChannelAddress,
        subject: str | None,
        now: datetime,
        topic: str | None = None,
    ) -> Conversation:
        row = ConversationRow(
            contact_id=contact_id,
            channel=address.channel,
            thread_key=address.thread_key,
            reply_channel=address.channel,
            reply_recipient=address.recipient_id,
            reply_thread=address.thread_id,
            status=ConversationStatus.BOT.value,
            priority=Priority.NORMAL.value,
            subject=subject[:300] if subject else None,
            topic=topic[:300] if topic else None,
            bot_misses=0,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return conversation_record(row)

    async def conversation_by_reference(
        self, channel: str, external_ids: Sequence[str]
    ) -> tuple[Conversation, str] | None:
        """The conversation holding the newest of these messages (ours or the customer's)."""
        if not external_ids:
            return None
        found = (
            await self.session.execute(
                select(MessageRow.conversation_id, MessageRow.external_id)
                .where(MessageRow.channel == channel, MessageRow.external_id.in_(external_ids))
                .order_by(MessageRow.id.desc())
                .limit(1)
            )
        ).first()
        if found is None:
            return None
        conversation = await self.conversation(found[0])
        assert conversation is not None
        return conversation, str(found[1])

    async def conversation_participants(self, conversation: Conversation) -> set[str]:
        """Who is on a conversation, on its channel: the contact's identities there, the
        reply address, and everyone who wrote into it or was addressed (Cc) by them."""
        channel = conversation.reply_to.channel
        found = {conversation.reply_to.recipient_id}
        found.update(
            await self.session.scalars(
                select(IdentityRow.external_id).where(
                    IdentityRow.contact_id == conversation.contact_id,
                    IdentityRow.channel == channel,
                )
            )
        )
        extras = await self.session.scalars(
            select(MessageRow.extras).where(
                MessageRow.conversation_id == conversation.id,
                MessageRow.direction == Direction.IN.value,
                MessageRow.channel == channel,
                MessageRow.extras.is_not(None),
            )
        )
        for extra in extras:
            if not isinstance(extra, dict):
                continue
            if isinstance(sender := extra.get("sender"), str):
                found.add(sender)
            if isinstance(others := extra.get("participants"), list):
                found.update(o for o in others if isinstance(o, str))
        return found

    async def conversation_by_topic(
        self, *, contact_id: int, channel: str, topic: str, since: datetime
    ) -> Conversation | None:
        """The contact's open conversation on ``topic``, active since ``since``."""
        row = await self.session.scalar(
            select(ConversationRow)
            .where(
                ConversationRow.contact_id == contact_id,
                ConversationRow.topic == topic[:300],
                ConversationRow.channel == channel,
                ConversationRow.status != ConversationStatus.RESOLVED.value,
                ConversationRow.updated_at >= since,
            )
            .order_by(ConversationRow.id.desc())
            .limit(1)
        )
        return None if row is None else conversation_record(row)

    async def conversation(self, conversation_id: int) -> Conversation | None:
        row = await self.session.get(ConversationRow, conversation_id)
        return None if row is None else conversation_record(row)

    async def list_conversations(
        self,
        *,
        statuses: Sequence[ConversationStatus],
        assignee_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
        teams: Sequence[str] | None = None,
        seen_by: SeenBy | None = None,
    ) -> list[Conversation]:
        """The queue order: soonest SLA first (none last), then higher priority, then
        oldest; only ``teams``' conversations when given, only what ``seen_by`` sees."""
        query = select(ConversationRow).where(
            ConversationRow.status.in_([s.value for s in statuses])
        )
        if assignee_id is not None:
            query = query.where(ConversationRow.assignee_id == assignee_id)
        if teams is not None:
            query = query.where(ConversationRow.team.in_(list(teams)))
        if seen_by is not None:
            query = query.where(seen_by.clause())
        query = query.order_by(
            ConversationRow.sla_due_at.is_(None),
            ConversationRow.sla_due_at,
            ConversationRow.priority.desc(),
            ConversationRow.created_at,
            ConversationRow.id,
        )
        rows = await self.session.scalars(query.limit(limit).offset(offset))
        return [conversation_record(r) for r in rows]

    async def contact_conversations(self, contact_id: int) -> list[Conversation]:
        rows = await self.session.scalars(
            select(ConversationRow)
            .where(ConversationRow.contact_id == contact_id)
            .order_by(ConversationRow.id.desc())
            .limit(50)
        )
        return [conversation_record(r) for r in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(ConversationRow.status, func.count()).group_by(ConversationRow.status)
        )
        return {str(status): int(count) for status, count in rows.all()}

    async def conversations_by_id(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        if not conversation_ids:
            return {}
        # Core rows (no ORM identity map to fill): they have the same named columns.
        table = ConversationRow.__table__
        rows = await self.session.execute(
            select(table).where(table.c.id.in_(list(set(conversation_ids))))
        )
        return {r.id: conversation_record(cast(ConversationRow, r)) for r in rows.all()}

    async def last_resolved(self, channel: str, thread_key: str) -> Conversation | None:
        """The latest resolved conversation on this thread (what a customer who writes
        again after its resolution may reopen)."""
        return await self._latest_resolved(channel, thread_key)

    async def _latest_resolved(
        self, channel: str, thread_key: str, *conditions: Any
    ) -> Conversation | None:
        c = ConversationRow
        row = await self.session.scalar(
            select(c)
            .where(c.channel == channel, c.thread_key == thread_key, c.status == "resolved")
            .where(*conditions)
            .order_by(c.id.desc())
            .limit(1)
        )
        return None if row is None else conversation_record(row)

    async def awaiting_answer(
        self, channel: str, thread_key: str, since: datetime
    ) -> Conversation | None:
        """The latest resolved conversation on this thread that asked the customer
        something after ``since``: a survey not yet answered (or rated without a
        comment yet), or a follow-up."""
        c = ConversationRow
        return await self._latest_resolved(
            channel,
            thread_key,
            ((c.survey_asked_at >= since) & (c.csat_score.is_(None) | c.csat_comment.is_(None)))
            | (c.follow_up_at >= since),
        )
