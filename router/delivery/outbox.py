"""The outbox dispatcher: claim due replies, deliver them, retry with backoff, dead-letter.

Every node may run one. Claiming reserves a row for ``lease_seconds`` (and,
on PostgreSQL, skips rows another node has locked), so a node that dies
mid-send only delays the reply: once the lease runs out another node sends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.base import (
    ChannelAdapter,
    ChannelAddress,
    OutboundKind,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientUnreachable,
    ReplyWindow,
    TransientDeliveryError,
    deduplicates_resends,
)
from router.delivery.events import DeliveryFailed, Event, EventBus, MessageDelivered
from router.delivery.files import Files
from router.delivery.retry import RetryPolicy
from router.metrics import DELIVERIES, STALE_CLAIMS
from router.storage import Database, Message, OutboxItem, Repositories

__all__ = ["OutboxDispatcher"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Outcome:
    item: OutboxItem
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    unreachable: bool = False
    # Not tried: an earlier reply to the same conversation failed first.
    held_back: bool = False
    # Not tried: so little of its lease was left that another node may take the row
    # before this one records the send (it would go out twice). Left alone: the row is
    # claimed again once the lease is over.
    stale: bool = False
    # The channel's own id for the delivered message (an email Message-ID).
    external_id: str | None = None


class OutboxDispatcher:
    """Delivers outbox rows through the channel registry."""

    def __init__(
        self,
        *,
        db: Database,
        channels: Mapping[str, ChannelAdapter],
        events: EventBus,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
        batch_size: int = 50,
        files: Files | None = None,
    ) -> None:
        self._db = db
        self._files = files
        self._channels = channels
        self._events = events
        self._policy = policy
        self._clock = clock
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._outcomes: list[_Outcome] = []
        self._record_lock = asyncio.Lock()
        # One sender at a time per conversation on this node, in the order they came:
        # two replies committed one after the other reach the customer in that order.
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}
        self.delivered = 0

    def _lease_from(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self._policy.lease)

    async def enqueue(
        self,
        repo: Repositories,
        message: Message,
        address: ChannelAddress,
        now: datetime,
        *,
        subject: str | None = None,
    ) -> OutboxItem:
        """Queue ``message`` in the caller's transaction, claimed by this node;
        once that transaction commits, hand the item to ``deliver_now``."""
        return await repo.enqueue(
            message=message,
            address=address,
            now=now,
            lease_until=self._lease_from(now),
            subject=subject,
            give_up_at=self._policy.give_up_at(now),
        )

    async def enqueue_many(
        self,
        repo: Repositories,
        queued: Sequence[tuple[Message, ChannelAddress, str | None]],
        now: datetime,
    ) -> list[OutboxItem]:
        """``enqueue`` for several messages in one statement."""
        return await repo.enqueue_many(
            queued,
            now=now,
            lease_until=self._lease_from(now),
            give_up_at=self._policy.give_up_at(now),
        )

    async def resend(self, repo: Repositories, outbox_id: int, conversation_id: int) -> bool:
        """Put a dead reply back in the queue (an agent's choice); the loop sends it."""
        now = self._clock()
        return await repo.resend(
            outbox_id,
            conversation_id=conversation_id,
            now=now,
            give_up_at=self._policy.give_up_at(now),
        )

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll."""
        self._wake.set()

    def deliver_now(self, items: list[OutboxItem]) -> None:
        """Send rows that were enqueued already claimed (see ``Repositories.enqueue``),
        right after their transaction committed: no claim round trip on the hot path."""
        if not items:
            return
        task = asyncio.create_task(self._send_claimed(items), name="outbox-deliver-now")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_claimed(self, items: list[OutboxItem]) -> None:
        try:
            await self._send_and_record(items)
        except Exception:
            # The rows stay claimed until their lease ends; then the loop retries them.
            logger.exception("immediate delivery failed; the outbox loop will retry")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Finish the round and the sends in progress, then stop."""
        self._stopping = True
        self._wake.set()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                handled = await self.deliver_due()
            except Exception:
                logger.exception("outbox round failed; retrying after the poll interval")
                handled = 0
            if handled >= self._batch_size:
                continue  # more may be waiting
            try:
                timeout = await self._until_next_due()
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            except Exception:
                logger.exception("outbox wait failed")
                await asyncio.sleep(self._poll_interval)

    async def _until_next_due(self) -> float:
        async with self._db.read() as repo:
            due = await repo.next_due()
        if due is None:
            return self._poll_interval
        seconds = (due - self._clock()).total_seconds()
        return min(self._poll_interval, max(seconds, 0.0))

    async def deliver_due(self) -> int:
        """Deliver every row due now; returns how many were tried."""
        now = self._clock()
        async with self._db.write() as repo:
            items = await repo.claim_due(
                now=now,
                lease_until=self._lease_from(now),
                limit=self._batch_size,
            )
        await self._send_and_record(items)
        return len(items)

    async def _send_and_record(self, items: list[OutboxItem]) -> None:
        if not items:
            return
        # Replies to one conversation go out in order; conversations go in parallel.
        by_conversation: dict[int, list[OutboxItem]] = defaultdict(list)
        for item in items:
            by_conversation[item.conversation_id].append(item)
        results = await asyncio.gather(
            *(self._deliver_in_order(batch) for batch in by_conversation.values())
        )
        self._outcomes.extend(outcome for batch in results for outcome in batch)
        # One writer records everything that piled up meanwhile: under load, many
        # deliveries share one transaction.
        async with self._record_lock:
            outcomes, self._outcomes = self._outcomes, []
            if outcomes:
                await self._record(outcomes)

    async def _deliver_in_order(self, items: list[OutboxItem]) -> list[_Outcome]:
        conversation_id = items[0].conversation_id
        lock, users = self._turns.get(conversation_id, (asyncio.Lock(), 0))
        self._turns[conversation_id] = (lock, users + 1)
        try:
            async with lock:  # FIFO: the units' sends wait in commit order
                return await self._deliver_each(items)
        finally:
            lock, users = self._turns[conversation_id]
            if users <= 1:
                del self._turns[conversation_id]
            else:
                self._turns[conversation_id] = (lock, users - 1)

    async def _deliver_each(self, items: list[OutboxItem]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        for index, item in enumerate(items):
            left = (item.next_attempt_at - self._clock()).total_seconds()
            if left < self._policy.lease / 3:
                STALE_CLAIMS.inc()
                outcomes.extend(_Outcome(later, stale=True) for later in items[index:])
                break
            outcome = await self._deliver(item)
            channel = self._channels.get(item.address.channel)
            if outcome.error is None and channel is not None and not deduplicates_resends(channel):
                # Sent twice, it would show twice: recorded now, not with the batch.
                await self._record([outcome])
                continue
            outcomes.append(outcome)
            if outcome.error is not None:
                # Keep the order: what follows waits for this one to get through.
                outcomes.extend(_Outcome(later, held_back=True) for later in items[index + 1 :])
                break
        return outcomes

    async def _window_closed(self, item: OutboxItem, window: ReplyWindow) -> str | None:
        """Why the platform would refuse this reply now, or None when it may go."""
        last_in, sent = await self._db.reading(
            lambda repo: repo.reply_window(item.conversation_id, exclude=item.id)
        )
        if last_in is None:
            return "the customer has not written on this channel; they must write first"
        if self._clock() - last_in > timedelta(hours=window.hours):
            return (
                f"the {window.hours:g}-hour reply window has closed (the customer last wrote "
                f"{last_in:%Y-%m-%d %H:%M} UTC); they must write again"
            )
        if window.replies is not None and sent >= window.replies:
            return (
                f"{sent} replies since the customer last wrote, the most this channel allows; "
                "they must write again"
            )
        return None

    async def _deliver(self, item: OutboxItem) -> _Outcome:
        channel = self._channels.get(item.address.channel)
        if channel is None:
            return _Outcome(item, error=f"channel {item.address.channel!r} is not running here")
        window = getattr(channel, "reply_window", None)
        if isinstance(window, ReplyWindow):
            closed = await self._window_closed(item, window)
            if closed is not None:
                return _Outcome(item, error=f"permanent: {closed}", permanent=True)
        outbound = OutboundMessage(
            address=item.address,
            conversation_id=item.conversation_id,
            text=item.text,
            kind=OutboundKind(item.kind),
            idempotency_key=item.idempotency_key,
            choices=item.choices,
            created_at=item.created_at,
            subject=item.subject,
            attachments=tuple(self._files.outbound(a, now=self._clock()) for a in item.attachments)
            if self._files is not None
            else (),
        )
        try:
            external_id = await channel.send(outbound)
        except TransientDeliveryError as exc:
            return _Outcome(item, error=f"transient: {exc}", retry_after=exc.retry_after)
        except RecipientUnreachable as exc:
            return _Outcome(item, error=f"unreachable: {exc}", permanent=True, unreachable=True)
        except PermanentDeliveryError as exc:
            return _Outcome(item, error=f"permanent: {exc}", permanent=True)
        except Exception as exc:
            logger.exception(
                "conversation %s: channel %s raised an unexpected error",
                item.conversation_id,
                item.address.channel,
            )
            return _Outcome(item, error=f"unexpected: {type(exc).__name__}: {exc}")
        return _Outcome(item, external_id=external_id)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        now = self._clock()
        events: list[Event] = []
        outcomes = [o for o in outcomes if not o.stale]
        sent = [o.item for o in outcomes if o.error is None and not o.held_back]
        async with self._db.write() as repo:
            await repo.mark_sent([item.id for item in sent], now)
            await repo.record_external_ids(
                [
                    (o.item.message_id, o.external_id)
                    for o in outcomes
                    if o.external_id and o.error is None and not o.held_back
                ]
            )
            for outcome in outcomes:
                item = outcome.item
                if outcome.held_back:
                    await repo.release(
                        item.id, next_attempt_at=now + timedelta(seconds=self._policy.backoff_base)
                    )
                    continue
                if outcome.error is None:
                    continue
                dead = outcome.permanent or self._policy.exhausted(item, now)
                if outcome.unreachable:
                    await repo.mark_unreachable(
                        item.address.channel, item.address.recipient_id, now
                    )
                DELIVERIES.labels(item.address.channel, "dead" if dead else "retry").inc()
                if dead:
                    await repo.mark_dead(item.id, error=outcome.error)
                    logger.error(
                        "conversation %s: reply %s dead after %s attempts: %s",
                        item.conversation_id,
                        item.id,
                        item.attempts,
                        outcome.error,
                    )
                else:
                    delay = self._policy.delay(item.attempts, outcome.retry_after)
                    await repo.mark_retry(
                        item.id,
                        error=outcome.error,
                        next_attempt_at=now + timedelta(seconds=delay),
                    )
                    logger.warning(
                        "conversation %s: reply %s attempt %s failed (%s); retry in %.1fs",
                        item.conversation_id,
                        item.id,
                        item.attempts,
                        outcome.error,
                        delay,
                    )
                events.append(DeliveryFailed(item.conversation_id, item.id, outcome.error, dead))
        self.delivered += len(sent)
        for item in sent:
            DELIVERIES.labels(item.address.channel, "sent").inc()
        events.extend(MessageDelivered(i.conversation_id, i.id, i.message_id) for i in sent)
        await self._events.publish(*events)
