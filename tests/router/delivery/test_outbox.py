"""The outbox across crashes and nodes: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import ChannelAddress
from channels.memory import MemoryChannel
from router.builders import utc_now
from router.conversations import AuthorKind, Direction
from router.delivery.events import EventBus
from router.delivery.outbox import OutboxDispatcher
from router.delivery.retry import RetryPolicy
from router.storage import Database, OutboxItem


async def _queue_replies(db: Database, count: int, *, lease_from_now: float | None) -> None:
    now = utc_now()
    address = ChannelAddress(channel="memory", recipient_id="customer-1")
    async with db.write() as repo:
        contact = await repo.create_contact(
            channel="memory", external_id="customer-1", display_name=None, email=None, now=now
        )
        conversation = await repo.create_conversation(
            contact_id=contact, address=address, subject=None, now=now
        )
        for i in range(count):
            message = await repo.add_message(
                conversation_id=conversation.id,
                direction=Direction.OUT,
                author_kind=AuthorKind.BOT,
                kind="answer",
                text=f"reply {i}",
                channel="memory",
                now=now,
            )
            lease = None if lease_from_now is None else now + timedelta(seconds=lease_from_now)
            await repo.enqueue(message=message, address=address, now=now, lease_until=lease)


def _dispatcher(db: Database, channel: MemoryChannel, *, batch_size: int = 50) -> OutboxDispatcher:
    return OutboxDispatcher(
        db=db,
        channels={channel.name: channel},
        events=EventBus(),
        policy=RetryPolicy(max_attempts=3, backoff_base=0.01, lease=30),
        clock=utc_now,
        batch_size=batch_size,
    )


async def test_a_reply_claimed_by_a_node_that_died_is_sent_once_its_lease_ends(
    database: Database,
) -> None:
    # The node committed the replies claimed for itself, then was killed before sending.
    await _queue_replies(database, 3, lease_from_now=-1)
    channel = MemoryChannel()
    assert await _dispatcher(database, channel).deliver_due() == 3
    assert [m.text for m in channel.sent] == ["reply 0", "reply 1", "reply 2"]
    assert await _dispatcher(database, channel).deliver_due() == 0
    async with database.read() as repo:
        assert await repo.count_outbox_by_status() == {"sent": 3}


async def test_a_reply_still_leased_by_a_live_node_is_left_alone(database: Database) -> None:
    await _queue_replies(database, 2, lease_from_now=30)
    channel = MemoryChannel()
    assert await _dispatcher(database, channel).deliver_due() == 0
    assert channel.sent == []


async def test_two_nodes_deliver_every_reply_exactly_once(database: Database) -> None:
    await _queue_replies(database, 60, lease_from_now=None)
    first, second = MemoryChannel(), MemoryChannel()
    nodes = [
        _dispatcher(database, first, batch_size=7),
        _dispatcher(database, second, batch_size=7),
    ]

    async def drain(node: OutboxDispatcher) -> None:
        while await node.deliver_due():
            pass

    await asyncio.gather(*(drain(node) for node in nodes))
    texts = [m.text for m in first.sent + second.sent]
    assert sorted(texts) == sorted(f"reply {i}" for i in range(60))
    async with database.read() as repo:
        assert await repo.count_outbox_by_status() == {"sent": 60}


def test_the_default_schedule_outlasts_a_relay_outage_and_gives_up_after_two_days() -> None:
    policy = RetryPolicy()
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    item = OutboxItem(
        id=1,
        conversation_id=1,
        message_id=1,
        idempotency_key="msg-1",
        address=ChannelAddress("email", "li@example.net"),
        kind="agent",
        text="hello",
        choices=(),
        status="pending",
        attempts=1,
        next_attempt_at=start,
        last_error=None,
        created_at=start,
        sent_at=None,
        give_up_at=policy.give_up_at(start),
    )
    # Walk the schedule through a 90-second outage: every attempt in it fails.
    now, attempts = start, 1
    while now < start + timedelta(seconds=90):
        assert not policy.exhausted(replace(item, attempts=attempts), now)
        now += timedelta(seconds=policy.delay(attempts, None))
        attempts += 1
    assert not policy.exhausted(replace(item, attempts=200), start + timedelta(hours=47))
    assert policy.exhausted(replace(item, attempts=200), start + timedelta(hours=48))


async def test_a_claim_whose_lease_is_nearly_over_is_left_to_the_next_claim(
    database: Database,
) -> None:
    """A node that gets to a claimed reply late (a busy event loop) does not send it:
    another node may be taking it over; sent by the next claim, once."""
    await _queue_replies(database, 2, lease_from_now=None)
    start = utc_now()
    times = iter([start, *[start + timedelta(seconds=25)] * 10])
    channel = MemoryChannel()
    late = _dispatcher(database, channel)
    late._clock = lambda: next(times)
    assert await late.deliver_due() == 2  # claimed at start, reached 25 s into a 30 s lease
    assert channel.sent == []
    async with database.read() as repo:
        assert await repo.count_outbox_by_status() == {"pending": 2}
    after = _dispatcher(database, channel)
    after._clock = lambda: start + timedelta(seconds=31)
    assert await after.deliver_due() == 2
    assert [m.text for m in channel.sent] == ["reply 0", "reply 1"]


async def test_a_channel_that_shows_a_resend_twice_has_each_send_recorded_at_once(
    database: Database,
) -> None:
    """Telegram has no idempotency key: each of its sends is recorded before the next
    goes out, so a node killed mid-batch leaves at most the one in flight to resend."""
    seen: list[dict[str, int]] = []

    class NoKeys(MemoryChannel):
        deduplicates = False

        async def send(self, outbound: Any) -> str | None:
            async with database.read() as repo:
                seen.append(await repo.count_outbox_by_status())
            return await super().send(outbound)

    await _queue_replies(database, 3, lease_from_now=None)
    assert await _dispatcher(database, NoKeys()).deliver_due() == 3
    assert seen == [{"pending": 3}, {"pending": 2, "sent": 1}, {"pending": 1, "sent": 2}]


async def test_replies_committed_one_after_another_reach_the_customer_in_that_order(
    database: Database,
) -> None:
    """Two quick questions, two answers from two units: the second answer waits for
    the first even when the first one's send is slow."""
    first_started, let_first_go = asyncio.Event(), asyncio.Event()

    class SlowFirst(MemoryChannel):
        async def send(self, outbound: Any) -> None:
            if outbound.text == "reply 0":
                first_started.set()
                await let_first_go.wait()
            await super().send(outbound)

    await _queue_replies(database, 2, lease_from_now=30)
    channel = SlowFirst()
    dispatcher = _dispatcher(database, channel)
    async with database.read() as repo:
        items = sorted(await repo.outbox_by_status("pending"), key=lambda i: i.id)
    dispatcher.deliver_now([items[0]])
    await first_started.wait()
    dispatcher.deliver_now([items[1]])
    # Every chance for the second to overtake the first (turns of the loop; no time).
    for _ in range(50):
        await asyncio.sleep(0)
    let_first_go.set()
    await channel.wait_for_sent(2)
    assert [o.text for o in channel.sent] == ["reply 0", "reply 1"]
    await dispatcher.stop()
