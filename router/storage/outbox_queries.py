"""The outbox: replies waiting to be delivered, and what became of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelAddress
from router.storage.mapping import (
    dump_attachments,
    dump_choices,
    outbox_record,
)
from router.storage.models import (
    MessageRow,
    OutboxRow,
)
from router.storage.records import (
    Message,
    OutboxItem,
)

__all__ = ["OutboxQueries"]


class OutboxQueries:
    session: AsyncSession

    # -- outbox ------------------------------------------------------------------

    async def enqueue(
        self,
        *,
        message: Message,
        address: ChannelAddress,
        now: datetime,
        lease_until: datetime | None = None,
        subject: str | None = None,
        give_up_at: datetime | None = None,
    ) -> OutboxItem:
        """Queue ``message`` for delivery to ``address``.

        With ``lease_until`` the row is born claimed by this node (its first attempt
        counted), so the caller may send it right after commit without another
        round trip; if this node dies first, the lease runs out and any node retries.
        """
        [item] = await self.enqueue_many(
            [(message, address, subject)],
            now=now,
            lease_until=lease_until,
            give_up_at=give_up_at,
        )
        return item

    async def enqueue_many(
        self,
        queued: Sequence[tuple[Message, ChannelAddress, str | None]],
        *,
        now: datetime,
        lease_until: datetime | None = None,
        give_up_at: datetime | None = None,
    ) -> list[OutboxItem]:
        """``enqueue`` for several (message, address, subject) in one statement."""
        attempts = 0 if lease_until is None else 1
        next_attempt_at = lease_until or now
        items = [
            OutboxItem(
                id=0,
                conversation_id=message.conversation_id,
                message_id=message.id,
                idempotency_key=f"msg-{message.id}",
                address=address,
                kind=message.kind or "system",
                text=message.text,
                choices=message.choices,
                status="pending",
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_error=None,
                created_at=now,
                sent_at=None,
                subject=subject,
                give_up_at=give_up_at,
                attachments=message.attachments,
            )
            for message, address, subject in queued
        ]
        values = [
            {
                "conversation_id": i.conversation_id,
                "message_id": i.message_id,
                "idempotency_key": i.idempotency_key,
                "channel": i.address.channel,
                "recipient": i.address.recipient_id,
                "thread": i.address.thread_id,
                "kind": i.kind,
                "text": i.text,
                "choices": dump_choices(i.choices),
                "subject": i.subject,
                "status": "pending",
                "attempts": attempts,
                "next_attempt_at": next_attempt_at,
                "created_at": now,
                "give_up_at": give_up_at,
                "attachments": dump_attachments(i.attachments),
            }
            for i in items
        ]
        table = cast(Table, OutboxRow.__table__)
        # A Core insert of the table, its values as parameters: compiled once and cached;
        # several rows go in one statement with their ids back in order.
        if len(values) == 1:
            ids = [await self.session.scalar(insert(table).returning(table.c.id), values[0])]
        else:
            # One multi-row INSERT; each row's id is found by its message (unique).
            result = await self.session.execute(
                insert(table).returning(table.c.id, table.c.message_id), values
            )
            by_message = {int(message): int(row) for row, message in result.all()}
            ids = [by_message[item.message_id] for item in items]
        return [replace(item, id=int(i)) for item, i in zip(items, ids, strict=True)]

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
            replace(outbox_record(r), attempts=r.attempts + 1, next_attempt_at=lease_until)
            for r in rows
        ]

    async def reply_window(
        self, conversation_id: int, *, exclude: int
    ) -> tuple[datetime | None, int]:
        """When the customer last wrote in the conversation, and how many replies were
        sent since (not counting outbox row ``exclude``)."""
        last_in = await self.session.scalar(
            select(func.max(MessageRow.created_at)).where(
                MessageRow.conversation_id == conversation_id, MessageRow.direction == "in"
            )
        )
        if last_in is None:
            return None, 0
        sent = await self.session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(
                OutboxRow.conversation_id == conversation_id,
                OutboxRow.status == "sent",
                OutboxRow.sent_at >= last_in,
                OutboxRow.id != exclude,
            )
        )
        return last_in, int(sent or 0)

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

    async def record_external_ids(self, ids: Sequence[tuple[int, str]]) -> None:
        """Store the channel's own id of delivered messages: ``(message id, external id)``."""
        for message_id, external_id in ids:
            await self.session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(external_id=external_id)
                .execution_options(synchronize_session=False)
            )

    async def mark_bounced(
        self, channel: str, external_ids: Sequence[str], *, error: str
    ) -> list[OutboxItem]:
        """Our delivered messages among ``external_ids`` came back: their rows go dead."""
        if not external_ids:
            return []
        rows = list(
            await self.session.scalars(
                select(OutboxRow)
                .join(MessageRow, MessageRow.id == OutboxRow.message_id)
                .where(MessageRow.channel == channel, MessageRow.external_id.in_(external_ids))
            )
        )
        if rows:
            await self.session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_([r.id for r in rows]))
                .values(status="dead", last_error=error)
                .execution_options(synchronize_session=False)
            )
        return [replace(outbox_record(r), status="dead", last_error=error) for r in rows]

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

    async def resend(
        self, outbox_id: int, *, conversation_id: int, now: datetime, give_up_at: datetime
    ) -> bool:
        """A dead reply goes back in the queue, due now, with a fresh retry window.
        False if it is not dead (already resent, or delivered) or not in that conversation."""
        result = await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == outbox_id,
                OutboxRow.conversation_id == conversation_id,
                OutboxRow.status == "dead",
            )
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                give_up_at=give_up_at,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def dead_counts(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        """How many replies could not be delivered, per conversation."""
        if not conversation_ids:
            return {}
        rows = await self.session.execute(
            select(OutboxRow.conversation_id, func.count())
            .where(OutboxRow.conversation_id.in_(conversation_ids), OutboxRow.status == "dead")
            .group_by(OutboxRow.conversation_id)
        )
        return {int(c): int(n) for c, n in rows.all()}

    async def outbox_for_conversation(self, conversation_id: int) -> list[OutboxItem]:
        rows = await self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.conversation_id == conversation_id)
            .order_by(OutboxRow.id)
        )
        return [outbox_record(r) for r in rows]

    async def outbox_by_status(self, status: str, *, limit: int = 100) -> list[OutboxItem]:
        rows = await self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.status == status)
            .order_by(OutboxRow.id.desc())
            .limit(limit)
        )
        return [outbox_record(r) for r in rows]

    async def oldest_pending(self) -> datetime | None:
        """When the oldest reply still waiting to be delivered was queued."""
        return await self.session.scalar(
            select(func.min(OutboxRow.created_at)).where(OutboxRow.status == "pending")
        )

    async def count_outbox_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        )
        return {str(status): int(count) for status, count in rows.all()}
