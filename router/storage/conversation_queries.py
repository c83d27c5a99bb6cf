"""Conversations, their messages and handoffs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, String, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Attachment, ChannelAddress, Choice
from router.conversations import (
    CLAIMABLE,
    AuthorKind,
    ConversationStatus,
    Direction,
    Priority,
)
from router.storage.inbox_queries import SeenBy
from router.storage.mapping import (
    conversation_record,
    dump_attachments,
    dump_choices,
    message_record,
)
from router.storage.models import (
    ConversationRow,
    HandoffRow,
    IdentityRow,
    MessageRow,
)
from router.storage.records import (
    Conversation,
    Handoff,
    Message,
)

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


class ConversationQueries:
    session: AsyncSession

    # -- conversations -----------------------------------------------------------

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

    async def automatic_replies_since(self, contact_id: int, since: datetime) -> int:
        """How many bot and system messages went to this contact since ``since``."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(MessageRow)
            .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
            .where(
                ConversationRow.contact_id == contact_id,
                MessageRow.direction == Direction.OUT.value,
                MessageRow.author_kind.in_([AuthorKind.BOT.value, AuthorKind.SYSTEM.value]),
                MessageRow.created_at >= since,
            )
        )
        return int(count or 0)

    async def bot_answered(self, conversation_id: int) -> bool:
        """Whether the bot has sent an answer in this conversation."""
        found = await self.session.scalar(
            select(MessageRow.id)
            .where(
                MessageRow.conversation_id == conversation_id,
                MessageRow.author_kind == AuthorKind.BOT.value,
                MessageRow.kind == "answer",
            )
            .limit(1)
        )
        return found is not None

    async def move_message(self, message_id: int, conversation_id: int) -> None:
        await self.session.execute(
            update(MessageRow)
            .where(MessageRow.id == message_id)
            .values(conversation_id=conversation_id)
            .execution_options(synchronize_session=False)
        )

    async def conversation(self, conversation_id: int) -> Conversation | None:
        row = await self.session.get(ConversationRow, conversation_id)
        return None if row is None else conversation_record(row)

    async def _update_conversation(self, conversation_id: int, **values: Any) -> int:
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

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

    # -- messages ----------------------------------------------------------------

    async def message_exists(self, channel: str, external_id: str) -> int | None:
        """The id of the message stored under ``(channel, external_id)``, if any."""
        return await self.session.scalar(
            select(MessageRow.id).where(
                MessageRow.channel == channel, MessageRow.external_id == external_id
            )
        )

    async def stored_fingerprint(
        self, channel: str, external_id: str
    ) -> tuple[int, str | None] | None:
        """The message stored under ``(channel, external_id)``: its id and the
        fingerprint its channel gave it (``extras["fingerprint"]``), if any."""
        row = (
            await self.session.execute(
                select(MessageRow.id, MessageRow.extras["fingerprint"].as_string()).where(
                    MessageRow.channel == channel, MessageRow.external_id == external_id
                )
            )
        ).first()
        return None if row is None else (int(row[0]), row[1])

    async def edit_message(
        self, channel: str, external_id: str, *, text: str, now: datetime
    ) -> tuple[int, int] | None:
        """Replace a stored customer message's text; its (message id, conversation id)."""
        row = (
            await self.session.execute(
                select(MessageRow.id, MessageRow.conversation_id).where(
                    MessageRow.channel == channel, MessageRow.external_id == external_id
                )
            )
        ).first()
        if row is None:
            return None
        await self.session.execute(
            update(MessageRow)
            .where(MessageRow.id == row.id)
            .values(text=text, edited_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(row.id), int(row.conversation_id)

    async def conversation_of_message(self, message_id: int) -> int | None:
        return await self.session.scalar(
            select(MessageRow.conversation_id).where(MessageRow.id == message_id)
        )

    async def add_message(
        self,
        *,
        conversation_id: int,
        direction: Direction,
        author_kind: AuthorKind,
        text: str,
        channel: str,
        now: datetime,
        kind: str | None = None,
        author_agent_id: int | None = None,
        external_id: str | None = None,
        html: str | None = None,
        entry_id: str | None = None,
        choices: Iterable[Choice] = (),
        extras: dict[str, Any] | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Message:
        # A Core insert: the ORM's unit of work is overhead on the ingest hot path.
        values = {
            "conversation_id": conversation_id,
            "direction": direction.value,
            "author_kind": author_kind.value,
            "author_agent_id": author_agent_id,
            "kind": kind,
            "text": text,
            "html": html,
            "channel": channel,
            "external_id": external_id,
            "entry_id": entry_id,
            "choices": dump_choices(choices) or None,
            "extras": extras or None,
            "attachments": dump_attachments(attachments),
            "created_at": now,
        }
        message_id = await self.session.scalar(
            # A Core insert of the table, its values as parameters: compiled once and
            # cached, without the ORM's bulk-insert machinery on every message.
            insert(cast(Table, MessageRow.__table__)).returning(MessageRow.__table__.c.id),
            values,
        )
        assert message_id is not None
        return Message(
            id=message_id,
            conversation_id=conversation_id,
            direction=direction,
            author_kind=author_kind,
            author_agent_id=author_agent_id,
            kind=kind,
            text=text,
            channel=channel,
            external_id=external_id,
            entry_id=entry_id,
            choices=tuple(choices),
            created_at=now,
            attachments=tuple(attachments),
            extras=dict(extras or {}),
        )

    async def add_outgoing(
        self,
        said: Sequence[tuple[int, str]],
        *,
        author_kind: AuthorKind,
        kind: str,
        channel_of: dict[int, str],
        now: datetime,
    ) -> list[Message]:
        """Several outgoing messages without choices or extras — ``(conversation id,
        text)`` — in one statement (scheduled work sends them by the hundred)."""
        table = cast(Table, MessageRow.__table__)
        values = [
            {
                "conversation_id": conversation_id,
                "direction": Direction.OUT.value,
                "author_kind": author_kind.value,
                "author_agent_id": None,
                "kind": kind,
                "text": text,
                "html": None,
                "channel": channel_of[conversation_id],
                "external_id": None,
                "entry_id": None,
                "choices": None,
                "extras": None,
                "attachments": None,
                "created_at": now,
            }
            for conversation_id, text in said
        ]
        # One multi-row INSERT; rows come back in no promised order, so each id is
        # matched to its (conversation, text) (two alike are interchangeable).
        result = await self.session.execute(
            insert(table).returning(table.c.id, table.c.conversation_id, table.c.text), values
        )
        ids: dict[tuple[int, str], list[int]] = {}
        for message_id, conversation_id, text in result.all():
            ids.setdefault((int(conversation_id), str(text)), []).append(int(message_id))
        return [
            Message(
                id=int(message_id),
                conversation_id=conversation_id,
                direction=Direction.OUT,
                author_kind=author_kind,
                author_agent_id=None,
                kind=kind,
                text=text,
                channel=channel_of[conversation_id],
                external_id=None,
                entry_id=None,
                choices=(),
                created_at=now,
                attachments=(),
                extras={},
            )
            for conversation_id, text in said
            for message_id in [ids[(conversation_id, text)].pop()]
        ]

    async def messages(self, conversation_id: int) -> list[Message]:
        rows = await self.session.scalars(
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.id)
        )
        return [message_record(r) for r in rows]

    async def last_message(self, conversation_id: int) -> Message | None:
        row = await self.session.scalar(
            select(MessageRow)
            .where(
                MessageRow.conversation_id == conversation_id,
                MessageRow.direction != Direction.NOTE.value,
            )
            .order_by(MessageRow.id.desc())
            .limit(1)
        )
        return None if row is None else message_record(row)

    # -- handoffs ----------------------------------------------------------------

    async def add_handoff(
        self,
        *,
        conversation_id: int,
        message_id: int | None,
        reason: str,
        language: str | None,
        priority: Priority,
        candidates: list[dict[str, Any]],
        context: dict[str, Any],
        sla_due_at: datetime | None,
        now: datetime,
    ) -> int:
        row = HandoffRow(
            conversation_id=conversation_id,
            message_id=message_id,
            reason=reason,
            language=language,
            priority=priority.value,
            candidates=candidates,
            context=context,
            sla_due_at=sla_due_at,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def handoffs(self, conversation_id: int) -> list[Handoff]:
        rows = await self.session.scalars(
            select(HandoffRow)
            .where(HandoffRow.conversation_id == conversation_id)
            .order_by(HandoffRow.id)
        )
        return [
            Handoff(
                id=r.id,
                conversation_id=r.conversation_id,
                reason=r.reason,
                language=r.language,
                priority=Priority(r.priority),
                candidates=tuple(r.candidates),
                context=dict(r.context),
                sla_due_at=r.sla_due_at,
                created_at=r.created_at,
            )
            for r in rows
        ]
