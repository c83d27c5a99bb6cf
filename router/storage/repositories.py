"""Repositories: every query the router makes, each returning records.

One ``Repositories`` wraps one ``AsyncSession`` (one unit of work); the caller
owns the transaction. Everything here is dialect-neutral SQL except the
``FOR UPDATE SKIP LOCKED`` hint, which SQLite ignores (it has one writer anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Attachment, ChannelAddress, Choice
from router.conversations import (
    CLAIMABLE,
    AuthorKind,
    ConversationStatus,
    Direction,
    Priority,
)
from router.storage.models import (
    AgentRow,
    ContactRow,
    ConversationRow,
    HandoffRow,
    IdentityRow,
    MessageRow,
    OutboxRow,
)
from router.storage.records import (
    Agent,
    Contact,
    Conversation,
    Handoff,
    Identity,
    Message,
    OutboxItem,
)

__all__ = ["Repositories"]


def _choices(raw: list[Any] | None) -> tuple[Choice, ...]:
    return tuple(Choice(id=str(c["id"]), label=str(c["label"])) for c in raw or ())


def _dump_choices(choices: Iterable[Choice]) -> list[Any]:
    return [{"id": c.id, "label": c.label} for c in choices]


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        contact_id=row.contact_id,
        channel=row.channel,
        thread_key=row.thread_key,
        reply_to=ChannelAddress(
            channel=row.reply_channel, recipient_id=row.reply_recipient, thread_id=row.reply_thread
        ),
        status=ConversationStatus(row.status),
        priority=Priority(row.priority),
        assignee_id=row.assignee_id,
        language=row.language,
        subject=row.subject,
        bot_misses=row.bot_misses,
        sla_due_at=row.sla_due_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        handed_off_at=row.handed_off_at,
        first_response_at=row.first_response_at,
        resolved_at=row.resolved_at,
    )


def _attachments(raw: list[Any] | None) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(name=a["name"], content_type=a["content_type"], size=a["size"], ref=a["ref"])
        for a in raw or ()
    )


def _message(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        direction=Direction(row.direction),
        author_kind=AuthorKind(row.author_kind),
        author_agent_id=row.author_agent_id,
        kind=row.kind,
        text=row.text,
        channel=row.channel,
        external_id=row.external_id,
        entry_id=row.entry_id,
        choices=_choices(row.choices),
        created_at=row.created_at,
        attachments=_attachments(row.attachments),
        edited_at=row.edited_at,
        extras=dict(row.extras or {}),
    )


def _outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        idempotency_key=row.idempotency_key,
        address=ChannelAddress(
            channel=row.channel, recipient_id=row.recipient, thread_id=row.thread
        ),
        kind=row.kind,
        text=row.text,
        choices=_choices(row.choices),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def _agent(row: AgentRow) -> Agent:
    return Agent(id=row.id, name=row.name, active=row.active, created_at=row.created_at)


class Repositories:
    """All queries of one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- contacts and identities -------------------------------------------------

    async def contact_for_identity(self, channel: str, external_id: str) -> int | None:
        return await self.session.scalar(
            select(IdentityRow.contact_id).where(
                IdentityRow.channel == channel, IdentityRow.external_id == external_id
            )
        )

    async def create_contact(
        self,
        *,
        channel: str,
        external_id: str,
        display_name: str | None,
        email: str | None,
        now: datetime,
    ) -> int:
        contact = ContactRow(display_name=display_name, email=email, created_at=now)
        self.session.add(contact)
        await self.session.flush()
        self.session.add(
            IdentityRow(
                contact_id=contact.id,
                channel=channel,
                external_id=external_id,
                display_name=display_name,
                created_at=now,
            )
        )
        await self.session.flush()
        return contact.id

    async def contact(self, contact_id: int) -> Contact | None:
        row = await self.session.get(ContactRow, contact_id)
        if row is None:
            return None
        return Contact(
            id=row.id, display_name=row.display_name, email=row.email, created_at=row.created_at
        )

    async def identities(self, contact_id: int) -> list[Identity]:
        rows = await self.session.scalars(
            select(IdentityRow).where(IdentityRow.contact_id == contact_id).order_by(IdentityRow.id)
        )
        return [
            Identity(
                channel=r.channel,
                external_id=r.external_id,
                display_name=r.display_name,
                unreachable_at=r.unreachable_at,
            )
            for r in rows
        ]

    async def mark_unreachable(self, channel: str, external_id: str, now: datetime) -> None:
        await self.session.execute(
            update(IdentityRow)
            .where(IdentityRow.channel == channel, IdentityRow.external_id == external_id)
            .values(unreachable_at=now)
            .execution_options(synchronize_session=False)
        )

    # -- conversations -----------------------------------------------------------

    async def open_conversation(self, channel: str, thread_key: str) -> Conversation | None:
        row = await self.session.scalar(
            select(ConversationRow)
            .where(
                ConversationRow.channel == channel,
                ConversationRow.thread_key == thread_key,
                ConversationRow.status != ConversationStatus.RESOLVED.value,
            )
            .order_by(ConversationRow.id.desc())
            .limit(1)
        )
        return None if row is None else _conversation(row)

    async def create_conversation(
        self,
        *,
        contact_id: int,
        address: ChannelAddress,
        subject: str | None,
        now: datetime,
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
            subject=subject,
            bot_misses=0,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return _conversation(row)

    async def conversation(self, conversation_id: int) -> Conversation | None:
        row = await self.session.get(ConversationRow, conversation_id)
        return None if row is None else _conversation(row)

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
        values: dict[str, Any] = {
            "reply_channel": reply_to.channel,
            "reply_recipient": reply_to.recipient_id,
            "reply_thread": reply_to.thread_id,
            "updated_at": now,
        }
        if language:
            values["language"] = language
        if bot_misses is not None:
            values["bot_misses"] = bot_misses
        await self._update_conversation(conversation_id, **values)

    async def hand_off(
        self, conversation_id: int, *, priority: Priority, sla_due_at: datetime, now: datetime
    ) -> None:
        await self._update_conversation(
            conversation_id,
            status=ConversationStatus.QUEUED.value,
            priority=priority.value,
            sla_due_at=sla_due_at,
            handed_off_at=now,
            updated_at=now,
        )

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

    async def resolve(self, conversation_id: int, now: datetime) -> None:
        await self._update_conversation(
            conversation_id,
            status=ConversationStatus.RESOLVED.value,
            resolved_at=now,
            updated_at=now,
        )

    async def list_conversations(
        self,
        *,
        statuses: Sequence[ConversationStatus],
        assignee_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Conversation]:
        """The queue order: soonest SLA first (none last), then higher priority, then oldest."""
        query = select(ConversationRow).where(
            ConversationRow.status.in_([s.value for s in statuses])
        )
        if assignee_id is not None:
            query = query.where(ConversationRow.assignee_id == assignee_id)
        query = query.order_by(
            ConversationRow.sla_due_at.is_(None),
            ConversationRow.sla_due_at,
            ConversationRow.priority.desc(),
            ConversationRow.created_at,
            ConversationRow.id,
        )
        rows = await self.session.scalars(query.limit(limit).offset(offset))
        return [_conversation(r) for r in rows]

    async def contact_conversations(self, contact_id: int) -> list[Conversation]:
        rows = await self.session.scalars(
            select(ConversationRow)
            .where(ConversationRow.contact_id == contact_id)
            .order_by(ConversationRow.id.desc())
            .limit(50)
        )
        return [_conversation(r) for r in rows]

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
            "choices": _dump_choices(choices) or None,
            "extras": extras or None,
            "attachments": [
                {"name": a.name, "content_type": a.content_type, "size": a.size, "ref": a.ref}
                for a in attachments
            ]
            or None,
            "created_at": now,
        }
        message_id = await self.session.scalar(
            insert(MessageRow).values(**values).returning(MessageRow.id)
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

    async def messages(self, conversation_id: int) -> list[Message]:
        rows = await self.session.scalars(
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.id)
        )
        return [_message(r) for r in rows]

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
        return None if row is None else _message(row)

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
        sla_due_at: datetime,
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

    # -- outbox ------------------------------------------------------------------

    async def enqueue(
        self,
        *,
        message: Message,
        address: ChannelAddress,
        now: datetime,
        lease_until: datetime | None = None,
    ) -> OutboxItem:
        """Queue ``message`` for delivery to ``address``.

        With ``lease_until`` the row is born claimed by this node (its first attempt
        counted), so the caller may send it right after commit without another
        round trip; if this node dies first, the lease runs out and any node retries.
        """
        key = f"msg-{message.id}"
        kind = message.kind or "system"
        attempts = 0 if lease_until is None else 1
        next_attempt_at = lease_until or now
        values = {
            "conversation_id": message.conversation_id,
            "message_id": message.id,
            "idempotency_key": key,
            "channel": address.channel,
            "recipient": address.recipient_id,
            "thread": address.thread_id,
            "kind": kind,
            "text": message.text,
            "choices": _dump_choices(message.choices),
            "status": "pending",
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "created_at": now,
        }
        outbox_id = await self.session.scalar(
            insert(OutboxRow).values(**values).returning(OutboxRow.id)
        )
        assert outbox_id is not None
        return OutboxItem(
            id=outbox_id,
            conversation_id=message.conversation_id,
            message_id=message.id,
            idempotency_key=key,
            address=address,
            kind=kind,
            text=message.text,
            choices=message.choices,
            status="pending",
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=None,
            created_at=now,
            sent_at=None,
        )

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxItem]:
        """Reserve due rows for this node until ``lease_until`` and count the attempt."""
        rows = list(
            await self.session.scalars(
                select(OutboxRow)
                .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return []
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([r.id for r in rows]))
            .values(attempts=OutboxRow.attempts + 1, next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        return [
            replace(_outbox(r), attempts=r.attempts + 1, next_attempt_at=lease_until) for r in rows
        ]

    async def next_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.status == "pending")
        )

    async def mark_sent(self, outbox_ids: Sequence[int], now: datetime) -> None:
        if not outbox_ids:
            return
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(outbox_ids))
            .values(status="sent", sent_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        )

    async def mark_retry(self, outbox_id: int, *, error: str, next_attempt_at: datetime) -> None:
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(last_error=error, next_attempt_at=next_attempt_at)
            .execution_options(synchronize_session=False)
        )

    async def release(self, outbox_id: int, *, next_attempt_at: datetime) -> None:
        """Give a claimed row back untried: the attempt does not count."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(attempts=OutboxRow.attempts - 1, next_attempt_at=next_attempt_at)
            .execution_options(synchronize_session=False)
        )

    async def mark_dead(self, outbox_id: int, *, error: str) -> None:
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(status="dead", last_error=error)
            .execution_options(synchronize_session=False)
        )

    async def outbox_for_conversation(self, conversation_id: int) -> list[OutboxItem]:
        rows = await self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.conversation_id == conversation_id)
            .order_by(OutboxRow.id)
        )
        return [_outbox(r) for r in rows]

    async def outbox_by_status(self, status: str, *, limit: int = 100) -> list[OutboxItem]:
        rows = await self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.status == status)
            .order_by(OutboxRow.id.desc())
            .limit(limit)
        )
        return [_outbox(r) for r in rows]

    async def count_outbox_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        )
        return {str(status): int(count) for status, count in rows.all()}

    # -- agents ------------------------------------------------------------------

    async def add_agent(self, *, name: str, token_hash: str, now: datetime) -> Agent:
        row = AgentRow(name=name, token_hash=token_hash, active=True, created_at=now)
        self.session.add(row)
        await self.session.flush()
        return _agent(row)

    async def agent_by_token_hash(self, token_hash: str) -> Agent | None:
        row = await self.session.scalar(select(AgentRow).where(AgentRow.token_hash == token_hash))
        return None if row is None else _agent(row)

    async def agent_by_name(self, name: str) -> Agent | None:
        row = await self.session.scalar(select(AgentRow).where(AgentRow.name == name))
        return None if row is None else _agent(row)

    async def agents(self) -> list[Agent]:
        rows = await self.session.scalars(select(AgentRow).order_by(AgentRow.id))
        return [_agent(r) for r in rows]

    async def agent_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(AgentRow.id, AgentRow.name).where(AgentRow.id.in_(wanted))
        )
        return {int(i): str(n) for i, n in rows.all()}
