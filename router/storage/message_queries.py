"""Messages (in, out, notes) and the handoffs that carry a conversation's context to people."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Attachment, Choice
from router.conversations import AuthorKind, Direction, Priority
from router.storage.mapping import dump_attachments, dump_choices, message_record
from router.storage.models import ConversationRow, HandoffRow, MessageRow
from router.storage.records import Handoff, Message

__all__ = ["MessageQueries"]


class MessageQueries:
    session: AsyncSession

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

    async def move_message(self, message_id: int, conversation_id: int) -> None:
        await self.session.execute(
            update(MessageRow)
            .where(MessageRow.id == message_id)
            .values(conversation_id=conversation_id)
            .execution_options(synchronize_session=False)
        )

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
