"""The in-process event bus: every subscriber hears every event in order; one that falls
behind loses its oldest events, not the publisher's time or the process's memory."""

from __future__ import annotations

from router.delivery.events import ConversationChanged, EventBus, MessageAdded


async def test_every_subscriber_hears_every_event_in_order() -> None:
    bus = EventBus()
    events = [MessageAdded(1, n, "customer", "in") for n in range(5)]
    async with bus.subscribe() as first, bus.subscribe() as second:
        await bus.publish(*events)
        assert [await first.get() for _ in events] == events
        assert [await second.get() for _ in events] == events
    assert bus.published == 5


async def test_a_subscriber_that_falls_behind_loses_the_oldest_and_is_told() -> None:
    bus = EventBus(queue_size=3)
    async with bus.subscribe() as slow:
        await bus.publish(*(ConversationChanged(n, "queued", None) for n in range(10)))
        assert slow.dropped == 7
        assert [(await slow.get()).conversation_id for _ in range(3)] == [7, 8, 9]


async def test_nobody_hears_events_after_leaving() -> None:
    bus = EventBus()
    async with bus.subscribe() as gone:
        pass
    await bus.publish(ConversationChanged(1, "queued", None))
    assert gone.dropped == 0 and gone._queue.empty()
