"""Ingest, the handoff contract, the outbox and claims, through the real service."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from channels.base import PermanentDeliveryError, TransientDeliveryError
from router.conversations import ConversationStatus
from router.desk.pipeline import IntakeClosed
from tests.support.service import Service, running_service


async def test_the_same_inbound_twice_is_stored_once_and_answered_once(service: Service) -> None:
    memory = service.memory
    first = await memory.inject(memory.message("How long is the warranty?", external_id="m-1"))
    again = await memory.inject(memory.message("How long is the warranty?", external_id="m-1"))
    assert not first.duplicate and again.duplicate
    assert again.message_id == first.message_id
    [reply] = await memory.wait_for_sent(1)
    assert reply.kind == "answer" and "warranty" in reply.text

    # A later, different message is answered: the dispatcher has nothing left of the first.
    await memory.inject(memory.message("How do I get an invoice?", external_id="m-2"))
    sent = await memory.wait_for_sent(2)
    assert "invoice" in sent[1].text.lower()
    async with service.db.read() as repo:
        messages = await repo.messages(first.conversation_id)
    assert [m.text for m in messages if m.author_kind == "customer"] == [
        "How long is the warranty?",
        "How do I get an invoice?",
    ]


async def test_concurrent_duplicates_are_stored_once(service: Service) -> None:
    memory = service.memory
    message = memory.message("Where is my order?", external_id="dup-race")
    receipts = await asyncio.gather(*(memory.inject(message) for _ in range(5)))
    assert sum(not r.duplicate for r in receipts) == 1
    assert len({r.message_id for r in receipts}) == 1


async def test_a_failing_channel_is_retried_then_dead_and_agents_see_it(service: Service) -> None:
    memory = service.memory
    await service.add_agent("ana")
    attempts = service.config.outbox.max_attempts
    memory.fail_next(*[TransientDeliveryError("relay unreachable") for _ in range(attempts)])
    receipt = await memory.inject(memory.message("How long is the warranty?", external_id="w"))
    await memory.wait_for_attempts(attempts)

    status, dead = await _wait_for_dead(service)
    assert status == 200
    [row] = dead
    assert row["conversation_id"] == receipt.conversation_id
    assert row["attempts"] == attempts and "relay unreachable" in row["last_error"]
    assert memory.sent == []

    _, detail = await service.api(
        "ana", "GET", f"/api/agent/conversations/{row['conversation_id']}"
    )
    [failed] = detail["failed_deliveries"]
    answer = next(m for m in detail["messages"] if m["author"] == "bot")
    assert answer["delivery"]["status"] == "dead" and failed["message_id"] == answer["id"]


async def test_a_transient_failure_is_delivered_once_on_retry(service: Service) -> None:
    memory = service.memory
    memory.fail_next(TransientDeliveryError("busy", retry_after=0.05))
    await memory.inject(memory.message("How do I get an invoice?", external_id="r"))
    [delivered] = await memory.wait_for_sent(1)
    assert "invoice" in delivered.text.lower()
    assert memory.attempts == 2


async def test_a_permanent_failure_is_dead_at_once(service: Service) -> None:
    memory = service.memory
    await service.add_agent("ana")
    memory.fail_next(PermanentDeliveryError("user blocked the bot"))
    await memory.inject(memory.message("How do I get an invoice?", external_id="p"))
    _, dead = await _wait_for_dead(service)
    assert dead[0]["attempts"] == 1 and "blocked" in dead[0]["last_error"]


async def test_a_handed_off_conversation_never_hears_from_the_bot_again(service: Service) -> None:
    memory = service.memory
    await service.add_agent("ana")
    receipt = await memory.inject(memory.message("转人工", external_id="h-1"))
    [ack] = await memory.wait_for_sent(1)
    assert ack.kind == "ack"

    # Questions the bot could answer perfectly well: silence while the queue waits...
    for i, text in enumerate(["How long is the warranty?", "退款多久到账", "hello"]):
        await memory.inject(memory.message(text, external_id=f"h-q{i}"))
    # ...and while an agent owns it.
    cid = receipt.conversation_id
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await memory.inject(memory.message("How do I get an invoice?", external_id="h-q9"))
    await service.api(
        "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "On it"}
    )
    sent = await memory.wait_for_sent(2)
    assert [m.kind for m in sent] == ["ack", "agent"]
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert [m["author"] for m in detail["messages"]].count("bot") == 0

    # Resolved, then written to again within the reopen window: the same conversation
    # opens again for a person, and the bot still keeps out of it.
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    again = await memory.inject(memory.message("How do I get an invoice?", external_id="h-new"))
    assert again.conversation_id == cid
    sent = await memory.wait_for_sent(4)
    assert [m.kind for m in sent] == ["ack", "agent", "survey", "ack"]


async def test_two_agents_claiming_at_once_get_one_owner(service: Service) -> None:
    memory = service.memory
    for name in ("ana", "bo", "cy", "di"):
        await service.add_agent(name)
    receipt = await memory.inject(memory.message("talk to a person", external_id="c"))
    path = f"/api/agent/conversations/{receipt.conversation_id}/claim"
    results = await asyncio.gather(
        *(service.api(name, "POST", path) for name in ("ana", "bo", "cy", "di"))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409]
    winner = next(body for status, body in results if status == 200)["assignee"]["name"]
    loser_body = next(body for status, body in results if status == 409)
    assert loser_body["error"]["code"] == "already_claimed"

    # Only the owner may reply.
    other = next(n for n in ("ana", "bo", "cy", "di") if n != winner)
    status, body = await service.api(
        other,
        "POST",
        f"/api/agent/conversations/{receipt.conversation_id}/reply",
        json={"text": "me too"},
    )
    assert status == 409 and body["error"]["code"] == "not_assigned_to_you"


async def test_repeated_misses_hand_off(service: Service) -> None:
    memory = service.memory
    for i in range(2):
        await memory.inject(memory.message("return", external_id=f"miss-{i}"))
    await memory.inject(memory.message("return", external_id="miss-2"))
    sent = await memory.wait_for_sent(3)
    assert [m.kind for m in sent] == ["clarify", "clarify", "ack"]
    async with service.db.read() as repo:
        [conversation] = await repo.list_conversations(statuses=[ConversationStatus.QUEUED])
        [handoff] = await repo.handoffs(conversation.id)
    assert handoff.reason == "repeated_misses"


async def test_complaints_jump_the_queue(service: Service) -> None:
    memory = service.memory
    await service.add_agent("ana")
    await memory.inject(memory.message("talk to a person", external_id="q1", sender="calm"))
    await memory.inject(
        memory.message("This is unacceptable, I want to complain", external_id="q2", sender="angry")
    )
    _, queue = await service.api("ana", "GET", "/api/agent/conversations?status=queued")
    assert [c["priority"] for c in queue["conversations"]] == ["high", "normal"]


async def test_shutdown_finishes_in_flight_work_and_refuses_new(service: Service) -> None:
    memory = service.memory
    in_flight = asyncio.create_task(memory.inject(memory.message("invoice", external_id="s-1")))
    await asyncio.sleep(0)  # let it start: it now holds the router's in-flight count
    await service.router.close()
    receipt = await in_flight
    assert not receipt.duplicate
    try:
        await memory.inject(memory.message("invoice", external_id="s-2"))
    except IntakeClosed:
        pass
    else:
        raise AssertionError("a closed router took a message")


async def _wait_for_dead(service: Service) -> tuple[int, list[dict[str, object]]]:
    async with service.events.subscribe() as events:
        status, body = await service.api("ana", "GET", "/api/agent/deliveries?status=dead")
        while not body["deliveries"]:
            event = await asyncio.wait_for(events.get(), 5)
            if getattr(event, "dead", False):
                status, body = await service.api("ana", "GET", "/api/agent/deliveries?status=dead")
    return status, body["deliveries"]


async def test_an_agent_sends_a_dead_reply_again_and_the_queue_shows_it_until_then(
    service: Service,
) -> None:
    memory = service.memory
    await service.add_agent("ana")
    memory.fail_next(PermanentDeliveryError("relay refused: mailbox full"))
    receipt = await memory.inject(memory.message("转人工", external_id="dead-1"))
    _, (dead,) = await _wait_for_dead(service)
    conversation = receipt.conversation_id

    _, listed = await service.api("ana", "GET", "/api/agent/conversations")
    (row,) = [c for c in listed["conversations"] if c["id"] == conversation]
    assert row["undelivered"] == 1

    path = f"/api/agent/conversations/{conversation}/deliveries/{dead['id']}/resend"
    async with service.delivered(1):
        status, body = await service.api("ana", "POST", path)
    assert status == 200 and body["status"] == "pending"
    (sent,) = memory.sent
    assert sent.kind == "ack"
    _, listed = await service.api("ana", "GET", "/api/agent/conversations")
    (row,) = [c for c in listed["conversations"] if c["id"] == conversation]
    assert row["undelivered"] == 0
    # Once delivered it cannot be "resent" again.
    status, body = await service.api("ana", "POST", path)
    assert status == 404 and body["error"]["code"] == "message_not_found"


async def test_a_reply_survives_more_failures_than_the_old_six_attempts(tmp_path: Path) -> None:
    # The shipped schedule: no cap on attempts, a 48-hour window (the tests' delays are short).
    async with running_service(tmp_path, overrides={"outbox": {"max_attempts": None}}) as service:
        memory = service.memory
        memory.fail_next(*[TransientDeliveryError("relay unreachable") for _ in range(8)])
        async with service.delivered(1, within=10):
            await memory.inject(memory.message("How do I get an invoice?", external_id="outage"))
        assert memory.attempts == 9 and len(memory.sent) == 1


async def test_the_bot_thinks_off_the_event_loop(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot reads by meaning with a model: while it thinks, the event loop keeps
    serving everyone else, so the decision is made on the bot's own thread."""
    bot = service.router._bot
    threads: list[str] = []
    decide = bot.decide

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return decide(*args, **kwargs)

    monkeypatch.setattr(bot, "decide", recording)
    memory = service.memory
    await memory.inject(memory.message("How long is the warranty?", external_id="t-1"))
    [reply] = await memory.wait_for_sent(1)
    assert reply.kind == "answer" and "warranty" in reply.text
    assert threads and all(name.startswith("relaydesk-bot") for name in threads)
    assert threading.main_thread().name not in threads
