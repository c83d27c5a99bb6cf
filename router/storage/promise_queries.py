"""Promises kept over time: SLA timers, scheduled follow-ups and reminders.

Every change is a conditional UPDATE that says whether it happened, so two nodes
sweeping the same due rows never both warn, escalate or send: the one whose
UPDATE matched does it, in the same transaction as what it causes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.mapping import scheduled_record, timer_record
from router.storage.models import ConversationRow, ScheduledRow, SlaTimerRow
from router.storage.records import Scheduled, SlaTimer

__all__ = ["PromiseQueries"]


class PromiseQueries:
    session: AsyncSession

    async def start_timer(
        self,
        *,
        conversation_id: int,
        policy: str,
        metric: str,
        started_at: datetime,
        due_at: datetime,
        warn_at: datetime | None,
    ) -> None:
        self.session.add(
            SlaTimerRow(
                conversation_id=conversation_id,
                policy=policy,
                metric=metric,
                started_at=started_at,
                due_at=due_at,
                warn_at=warn_at,
            )
        )
        await self.session.flush()

    async def open_timers(
        self, conversation_id: int, metrics: Sequence[str] | None = None
    ) -> list[SlaTimer]:
        query = select(SlaTimerRow).where(
            SlaTimerRow.conversation_id == conversation_id, SlaTimerRow.stopped_at.is_(None)
        )
        if metrics is not None:
            query = query.where(SlaTimerRow.metric.in_(list(metrics)))
        return [timer_record(r) for r in await self.session.scalars(query.order_by(SlaTimerRow.id))]

    async def timers(self, conversation_id: int) -> list[SlaTimer]:
        rows = await self.session.scalars(
            select(SlaTimerRow)
            .where(SlaTimerRow.conversation_id == conversation_id)
            .order_by(SlaTimerRow.id)
        )
        return [timer_record(r) for r in rows]

    async def stop_timer(
        self, timer_id: int, *, now: datetime, outcome: str, late_seconds: float
    ) -> bool:
        result = await self.session.execute(
            update(SlaTimerRow)
            .where(SlaTimerRow.id == timer_id, SlaTimerRow.stopped_at.is_(None))
            .values(stopped_at=now, outcome=outcome, late_seconds=late_seconds)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def pause_timer(self, timer_id: int, *, remaining_seconds: float) -> None:
        await self.session.execute(
            update(SlaTimerRow)
            .where(SlaTimerRow.id == timer_id, SlaTimerRow.stopped_at.is_(None))
            .values(due_at=None, warn_at=None, remaining_seconds=remaining_seconds)
            .execution_options(synchronize_session=False)
        )

    async def resume_timer(
        self, timer_id: int, *, due_at: datetime, warn_at: datetime | None
    ) -> None:
        await self.session.execute(
            update(SlaTimerRow)
            .where(SlaTimerRow.id == timer_id, SlaTimerRow.stopped_at.is_(None))
            .values(due_at=due_at, warn_at=warn_at, remaining_seconds=None)
            .execution_options(synchronize_session=False)
        )

    async def timers_to_warn(self, now: datetime, limit: int) -> list[SlaTimer]:
        rows = await self.session.scalars(
            select(SlaTimerRow)
            .where(
                SlaTimerRow.stopped_at.is_(None),
                SlaTimerRow.warned_at.is_(None),
                SlaTimerRow.warn_at <= now,
            )
            .order_by(SlaTimerRow.warn_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [timer_record(r) for r in rows]

    async def timers_breached(self, now: datetime, limit: int) -> list[SlaTimer]:
        rows = await self.session.scalars(
            select(SlaTimerRow)
            .where(
                SlaTimerRow.stopped_at.is_(None),
                SlaTimerRow.breached_at.is_(None),
                SlaTimerRow.due_at <= now,
            )
            .order_by(SlaTimerRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [timer_record(r) for r in rows]

    async def mark_timer(self, timer_id: int, field: str, now: datetime) -> bool:
        """Set ``warned_at`` or ``breached_at`` once; False if another node did."""
        column = {"warned_at": SlaTimerRow.warned_at, "breached_at": SlaTimerRow.breached_at}[field]
        result = await self.session.execute(
            update(SlaTimerRow)
            .where(SlaTimerRow.id == timer_id, column.is_(None))
            .values({field: now})
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def refresh_due(self, conversation_id: int) -> None:
        """The conversation's queue due time: its earliest running promise."""
        earliest = (
            select(func.min(SlaTimerRow.due_at))
            .where(
                SlaTimerRow.conversation_id == conversation_id,
                SlaTimerRow.stopped_at.is_(None),
            )
            .scalar_subquery()
        )
        await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id)
            .values(sla_due_at=earliest)
            .execution_options(synchronize_session=False)
        )

    async def schedule(
        self,
        *,
        conversation_id: int,
        kind: str,
        due_at: datetime,
        text: str | None,
        agent_id: int | None,
        created_by: int | None,
        now: datetime,
    ) -> Scheduled:
        row = ScheduledRow(
            conversation_id=conversation_id,
            kind=kind,
            due_at=due_at,
            status="pending",
            text=text,
            agent_id=agent_id,
            created_by=created_by,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return scheduled_record(row)

    async def scheduled_for(self, conversation_id: int) -> list[Scheduled]:
        rows = await self.session.scalars(
            select(ScheduledRow)
            .where(ScheduledRow.conversation_id == conversation_id)
            .order_by(ScheduledRow.due_at, ScheduledRow.id)
        )
        return [scheduled_record(r) for r in rows]

    async def scheduled_item(self, item_id: int) -> Scheduled | None:
        row = await self.session.get(ScheduledRow, item_id)
        return None if row is None else scheduled_record(row)

    async def due_scheduled(self, now: datetime, limit: int) -> list[Scheduled]:
        rows = await self.session.scalars(
            select(ScheduledRow)
            .where(ScheduledRow.status == "pending", ScheduledRow.due_at <= now)
            .order_by(ScheduledRow.due_at, ScheduledRow.id)
            .limit(limit)
        )
        return [scheduled_record(r) for r in rows]

    async def finish_scheduled(self, item_id: int, *, now: datetime, status: str = "done") -> bool:
        """pending → done or cancelled, once; False if it was not pending any more."""
        result = await self.session.execute(
            update(ScheduledRow)
            .where(ScheduledRow.id == item_id, ScheduledRow.status == "pending")
            .values(status=status, done_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finish_many(self, item_ids: Sequence[int], *, now: datetime) -> set[int]:
        """pending → done for those of ``item_ids`` still pending; returns those (the
        claim: another node's concurrent sweep gets the rest, never the same)."""
        if not item_ids:
            return set()
        result = await self.session.execute(
            update(ScheduledRow)
            .where(ScheduledRow.id.in_(list(item_ids)), ScheduledRow.status == "pending")
            .values(status="done", done_at=now)
            .returning(ScheduledRow.id)
            .execution_options(synchronize_session=False)
        )
        return {int(i) for i in result.scalars()}

    async def mark_followed_up(self, conversation_ids: Sequence[int], now: datetime) -> None:
        if conversation_ids:
            await self.session.execute(
                update(ConversationRow)
                .where(ConversationRow.id.in_(list(conversation_ids)))
                .values(follow_up_at=now)
                .execution_options(synchronize_session=False)
            )

    async def postpone_scheduled(self, item_id: int, due_at: datetime) -> None:
        await self.session.execute(
            update(ScheduledRow)
            .where(ScheduledRow.id == item_id, ScheduledRow.status == "pending")
            .values(due_at=due_at)
            .execution_options(synchronize_session=False)
        )

    async def cancel_pending(self, conversation_id: int, kind: str, now: datetime) -> int:
        result = await self.session.execute(
            update(ScheduledRow)
            .where(
                ScheduledRow.conversation_id == conversation_id,
                ScheduledRow.kind == kind,
                ScheduledRow.status == "pending",
            )
            .values(status="cancelled", done_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def next_scheduled_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(ScheduledRow.due_at)).where(ScheduledRow.status == "pending")
        )
