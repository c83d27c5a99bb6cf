"""A customer who writes again after their conversation was resolved: soon after, the
conversation with its whole story opens again for a person; later, a new one names it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.storage import Database
from tests.router.desk.test_aftercare import at, detail, sent_to, served, settings
from tests.support.clock import FakeClock
from tests.support.mail import Relay
from tests.support.service import Service, running_service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2026-11-26T10:00"))


async def desk_with(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock, reopen_days: float
) -> AsyncIterator[Service]:
    overrides = {**settings(relay.port, survey=False), "inbox": {"reopen_days": reopen_days}}
    async with running_service(
        tmp_path, database=database, overrides=overrides, clock=clock
    ) as running:
        await running.add_agent("ana")
        yield running


@pytest.fixture
async def desk(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> AsyncIterator[Service]:
    async for running in desk_with(database, tmp_path, relay, clock, reopen_days=7):
        yield running


async def test_writing_again_within_the_window_reopens_the_conversation(
    desk: Service, clock: FakeClock
) -> None:
    cid = await served(desk, "again")
    clock.advance(days=6, hours=23)
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("It broke again, same problem", external_id="again-2", sender="again")
    )
    assert receipt.conversation_id == cid
    body = await detail(desk, cid)
    assert body["status"] == "queued" and body["sla_due_at"] is not None
    handoff = body["handoffs"][-1]
    assert handoff["reason"] == "reopened_by_customer"
    assert handoff["context"]["customer_text"] == "It broke again, same problem"
    # The agent who solved it last time is named on the handoff card.
    async with desk.db.read() as repo:
        ana = await repo.agent_by_name("ana")
    assert ana is not None and handoff["context"]["previous_assignee"] == ana.id
    customer = [m for m in body["messages"] if m["direction"] == "in"]
    assert customer[-1]["extras"]["joined"] == f"reopens resolved conversation #{cid}"
    # The customer is told a person will answer (a second notice), the bot stays out.
    async with asyncio.timeout(5):
        while len(sent_to(desk, "again", "ack")) < 2:
            await memory.wait_for_sent(len(memory.sent) + 1)
    assert f"#{cid}" in sent_to(desk, "again", "ack")[-1].text
    assert [m for m in body["messages"] if m["author"] == "bot"] == []


async def test_a_start_command_greets_and_reopens_nothing(desk: Service, clock: FakeClock) -> None:
    cid = await served(desk, "starter")
    memory = desk.memory
    start = dataclasses.replace(
        memory.message("/start", external_id="starter-2", sender="starter"), command="start"
    )
    receipt = await memory.inject(start)
    assert receipt.conversation_id != cid
    assert (await detail(desk, cid))["status"] == "resolved"


async def test_writing_after_the_window_opens_a_new_conversation_that_names_the_old(
    desk: Service, clock: FakeClock
) -> None:
    cid = await served(desk, "later")
    clock.advance(days=7, minutes=1)
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("How do I return an item?", external_id="later-2", sender="later")
    )
    assert receipt.conversation_id != cid
    assert (await detail(desk, cid))["status"] == "resolved"
    body = await detail(desk, receipt.conversation_id)
    [first] = [m for m in body["messages"] if m["direction"] == "in"]
    assert first["extras"]["joined"].startswith("new conversation; follows conversation #")
    assert f"#{cid}," in first["extras"]["joined"]
    # A new question for the bot, which answers it.
    assert body["status"] == "bot"


async def test_reopening_can_be_switched_off(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> None:
    async for desk in desk_with(database, tmp_path, relay, clock, reopen_days=0):
        cid = await served(desk, "off")
        memory = desk.memory
        receipt = await memory.inject(
            memory.message("one more thing", external_id="off-2", sender="off")
        )
        assert receipt.conversation_id != cid
        assert (await detail(desk, cid))["status"] == "resolved"


async def test_a_thank_you_after_the_resolution_is_a_comment_not_a_new_request(
    desk: Service, clock: FakeClock
) -> None:
    cid = await served(desk, "thanks")
    memory = desk.memory
    said = [m for m in (await detail(desk, cid))["messages"] if m["direction"] == "out"]
    clock.advance(hours=1)
    for n, text in enumerate(["回复很快，谢谢", "ok thanks 👍", "🙏"], 2):
        receipt = await memory.inject(
            memory.message(text, external_id=f"thanks-{n}", sender="thanks")
        )
        assert receipt.conversation_id == cid
    body = await detail(desk, cid)
    assert body["status"] == "resolved"
    assert [h["reason"] for h in body["handoffs"]].count("reopened_by_customer") == 0
    remarks = [m for m in body["messages"] if m["extras"].get("closing_remark")]
    assert [m["text"] for m in remarks] == ["回复很快，谢谢", "ok thanks 👍", "🙏"]
    assert remarks[0]["extras"]["joined"] == f"closing remark on resolved conversation #{cid}"
    # Nobody was told anything: no handoff notice, no bot.
    assert [m for m in body["messages"] if m["direction"] == "out"] == said

    # Something asked reopens, as before.
    receipt = await memory.inject(
        memory.message("谢谢，但是还是不行", external_id="thanks-9", sender="thanks")
    )
    assert receipt.conversation_id == cid
    body = await detail(desk, cid)
    assert body["status"] == "queued"
    assert body["handoffs"][-1]["reason"] == "reopened_by_customer"


async def test_the_agent_who_answered_is_credited_after_the_customer_reopens(
    desk: Service, clock: FakeClock
) -> None:
    """Reopened, the conversation is back in the queue with nobody on it; the promises
    Ana kept are still hers in the reports, not "unassigned"."""
    cid = await served(desk, "credit")
    clock.advance(hours=1)
    memory = desk.memory
    await memory.inject(
        memory.message("It broke again, same problem", external_id="credit-2", sender="credit")
    )
    assert (await detail(desk, cid))["assignee"] is None
    await desk.add_agent("boss", role="admin")
    day = clock().date().isoformat()
    status, report = await desk.api("boss", "GET", f"/api/agent/reports?from={day}&to={day}")
    assert status == 200
    by_agent = report["people"]["sla"]["by_agent"]
    assert "ana" in by_agent and by_agent["ana"]["met"] >= 1
    assert "unassigned" not in by_agent
