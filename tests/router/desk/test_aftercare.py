"""After the service: the rating asked in the customer's channel, follow-ups (回访) and
reminders that survive restarts, are sent once, and never at night."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.conversations import ConversationStatus
from router.desk.aftercare import parse_rating
from router.keys import AFTERCARE, SCHEDULER
from router.storage import Database
from tests.channels.test_email import SUPPORT, conversation_of, email_overrides, smtp_port
from tests.support.clock import FakeClock
from tests.support.mail import Relay, body_text, customer_mail, send
from tests.support.service import Service, running_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUPERVISOR = "lead@shop.example"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def settings(relay_port: int, **sla: Any) -> dict[str, Any]:
    return {
        **email_overrides(relay_port),
        "server": {"public_url": "https://help.shop.example"},
        "sla": {
            "timezone": "Asia/Shanghai",
            "calendars": {"default": {"hours": {"daily": "09:00-21:00"}}},
            "policies": [
                {"name": "chat", "channels": ["memory"], "first_response": "1h", "follow_up": "72h"}
            ],
            "supervisor_email": SUPERVISOR,
            **sla,
        },
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2026-11-26T10:00"))


@pytest.fixture
async def desk(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> AsyncIterator[Service]:
    async with running_service(
        tmp_path, database=database, overrides=settings(relay.port), clock=clock, drive_sweeps=True
    ) as running:
        await running.add_agent("ana")
        yield running


async def served(service: Service, sender: str, *, reply: bool = True) -> int:
    """A customer handed to Ana, answered by her (``reply``) and resolved."""
    memory = service.memory
    receipt = await memory.inject(
        memory.message("I want to talk to a person", external_id=f"{sender}-1", sender=sender)
    )
    cid = receipt.conversation_id
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    if reply:
        await service.api(
            "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "Fixed it."}
        )
    status, _ = await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    assert status == 200
    return cid


def sent_to(service: Service, sender: str, kind: str) -> list[Any]:
    return [m for m in service.memory.sent if m.address.recipient_id == sender and m.kind == kind]


async def detail(service: Service, cid: int) -> dict[str, Any]:
    status, body = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert status == 200
    return dict(body)


@pytest.mark.parametrize(
    ("text", "score", "comment"),
    [
        ("5", 5, None),
        ("4 - quick and friendly", 4, "quick and friendly"),
        ("3/5", 3, None),
        ("５分，很满意", 5, "很满意"),
        ("四星", 4, None),
        ("★★ slow", 2, "slow"),
        ("1\n\n> On Monday you wrote:\n> Rate us from 1 to 5", 1, None),
    ],
)
def test_ratings_are_read_as_customers_write_them(
    text: str, score: int, comment: str | None
) -> None:
    rating = parse_rating(text)
    assert rating is not None and (rating.score, rating.comment) == (score, comment)


@pytest.mark.parametrize("text", ["10 items are missing", "2024-05-01 order", "My order", "0", "6"])
def test_a_message_that_merely_starts_with_a_number_is_not_a_rating(text: str) -> None:
    assert parse_rating(text) is None


async def test_the_customer_rates_with_a_choice_and_the_conversation_stays_resolved(
    desk: Service,
) -> None:
    cid = await served(desk, "rater")
    [survey] = sent_to(desk, "rater", "survey")
    assert [c.id for c in survey.choices] == [f"csat:{n}" for n in range(1, 6)]
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("★★★★ Very good", external_id="rater-2", sender="rater", choice="csat:4")
    )
    assert receipt.conversation_id == cid
    body = await detail(desk, cid)
    assert body["status"] == "resolved" and body["satisfaction"]["score"] == 4
    # Only the first rating counts; a later "1" is a message for a person (it reopens
    # the conversation: inbox.reopen_days), not a second rating.
    again = await memory.inject(memory.message("1", external_id="rater-3", sender="rater"))
    assert again.conversation_id == cid
    body = await detail(desk, cid)
    assert body["satisfaction"]["score"] == 4 and body["status"] == "queued"


async def test_a_low_rating_with_a_comment_tells_the_supervisor(
    desk: Service, relay: Relay
) -> None:
    cid = await served(desk, "unhappy")
    memory = desk.memory
    await memory.inject(
        memory.message("1 nobody fixed anything", external_id="unhappy-2", sender="unhappy")
    )
    satisfaction = (await detail(desk, cid))["satisfaction"]
    assert (satisfaction["score"], satisfaction["comment"]) == (1, "nobody fixed anything")
    [alert] = await relay.wait_for(1)
    assert alert["To"] == SUPERVISOR and "low rating" in alert["Subject"]
    assert "nobody fixed anything" in body_text(alert)


async def test_no_survey_when_no_person_ever_replied(desk: Service) -> None:
    await served(desk, "silent", reply=False)
    assert sent_to(desk, "silent", "survey") == []
    [closed] = sent_to(desk, "silent", "system")
    assert "closed" in closed.text


async def test_a_mail_scanner_opening_the_survey_link_records_nothing(
    desk: Service,
) -> None:
    cid = await served(desk, "linked")
    token = desk.app[AFTERCARE].survey_token(cid)
    for _ in range(3):  # a scanner, a preview, the customer
        async with desk.client.get(f"/survey/{token}") as page:
            assert page.status == 200 and 'name="score"' in await page.text()
    assert (await detail(desk, cid))["satisfaction"]["score"] is None
    async with desk.client.post(
        f"/survey/{token}", data={"score": "5", "comment": "Great <b>help</b>"}
    ) as done:
        assert done.status == 200 and "Thank you" in await done.text()
    satisfaction = (await detail(desk, cid))["satisfaction"]
    assert (satisfaction["score"], satisfaction["comment"]) == (5, "Great <b>help</b>")
    async with desk.client.post(f"/survey/{token}", data={"score": "1"}) as twice:
        assert "already" in await twice.text()
    assert (await detail(desk, cid))["satisfaction"]["score"] == 5


@pytest.mark.parametrize("token", ["1.forged", "abc", "99.xxxxxxxxxxxxxxxxxxxxxxxx", "１.x"])
async def test_a_forged_survey_link_is_a_404(desk: Service, token: str) -> None:
    async with desk.client.post(f"/survey/{token}", data={"score": "5"}) as response:
        assert response.status == 404


async def test_the_survey_by_mail_takes_a_digit_reply_and_has_a_signed_link(
    desk: Service, relay: Relay
) -> None:
    question = customer_mail("My blender stopped working, please help.", subject="Broken blender")
    await send(smtp_port(desk), question)
    cid = await conversation_of(desk, question["Message-ID"])
    first = await relay.wait_for(1)
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await desk.api(
        "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "A new one is sent."}
    )
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    mails = await relay.wait_for(len(first) + 2)
    survey = mails[-1]
    text = body_text(survey)
    assert "number from 1 to 5" in text
    link = re.search(r"https://help\.shop\.example/survey/(\S+)", text)
    assert link is not None and desk.app[AFTERCARE].survey_conversation(link.group(1)) == cid
    answer = customer_mail(
        "4 thanks, works again\n\n> Rate us from 1 to 5",
        subject=f"Re: {survey['Subject']}",
        in_reply_to=survey["Message-ID"],
        references=[survey["Message-ID"]],
    )
    await send(smtp_port(desk), answer)
    assert await conversation_of(desk, answer["Message-ID"]) == cid
    satisfaction = (await detail(desk, cid))["satisfaction"]
    assert (satisfaction["score"], satisfaction["comment"]) == (4, "thanks, works again")
    thanks = (await relay.wait_for(len(mails) + 1))[-1]
    assert thanks["To"] == "li.wei@example.net" and "Thank you" in body_text(thanks)
    assert SUPPORT in thanks["From"]


async def test_automatic_mail_is_never_surveyed(desk: Service, relay: Relay) -> None:
    bounce = customer_mail("I am out of the office.", headers={"Auto-Submitted": "auto-replied"})
    await send(smtp_port(desk), bounce)
    cid = await conversation_of(desk, bounce["Message-ID"])
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    assert (await detail(desk, cid))["satisfaction"] is None
    assert relay.received == []


async def test_the_follow_up_waits_for_opening_hours_is_sent_once_and_a_reply_reopens(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T20:30"))
    cid = await served(desk, "visited")
    [pending] = (await detail(desk, cid))["scheduled"]
    assert pending["kind"] == "follow_up"
    assert datetime.fromisoformat(pending["due_at"]) == at("2026-11-29T20:30")
    scheduler = desk.app[SCHEDULER]
    clock.set(at("2026-11-29T21:05"))  # due, but the desk has closed: not at night
    assert (await scheduler.run_due()).postponed == 1
    assert sent_to(desk, "visited", "follow_up") == []
    clock.set(at("2026-11-30T09:00"))
    assert (await scheduler.run_due()).done == 1
    assert (await scheduler.run_due()).done == 0
    [follow_up] = await _wait_sent(desk, "visited", "follow_up")
    assert f"#{cid}" in follow_up.text
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("Still broken, sorry", external_id="visited-2", sender="visited")
    )
    assert receipt.conversation_id == cid
    body = await detail(desk, cid)
    assert body["status"] == "queued"
    assert body["handoffs"][-1]["reason"] == "follow_up_reply"


async def _wait_sent(service: Service, sender: str, kind: str) -> list[Any]:
    memory = service.memory
    async with asyncio.timeout(5):
        while not sent_to(service, sender, kind):
            await memory.wait_for_sent(len(memory.sent) + 1)
    return sent_to(service, sender, kind)


async def test_a_follow_up_survives_a_restart(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> None:
    overrides = settings(relay.port)
    async with running_service(
        tmp_path / "a", database=database, overrides=overrides, clock=clock, drive_sweeps=True
    ) as before:
        await before.add_agent("ana")
        cid = await served(before, "restart")
    clock.set(at("2026-11-29T10:00"))
    async with running_service(
        tmp_path / "b", database=database, overrides=overrides, clock=clock, drive_sweeps=True
    ) as after:
        # The new process's scheduler finds it on its first sweep.
        await after.app[SCHEDULER].run_due()
        [follow_up] = await _wait_sent(after, "restart", "follow_up")
        assert f"#{cid}" in follow_up.text
        async with after.db.read() as repo:
            kinds = [m.kind for m in await repo.messages(cid)]
        assert kinds.count("follow_up") == 1


async def test_a_reminder_tells_its_agent_when_due_and_a_cancelled_one_never_does(
    desk: Service, clock: FakeClock, relay: Relay
) -> None:
    async with desk.db.write() as repo:
        ana = await repo.agent_by_name("ana")
        assert ana is not None
        await repo.set_agent_email(ana.id, "ana@shop.example")
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("I want to talk to a person", external_id="cb-1", sender="callback")
    )
    cid = receipt.conversation_id
    base = f"/api/agent/conversations/{cid}/scheduled"
    status, reminder = await desk.api(
        "ana", "POST", base, json={"kind": "reminder", "in_minutes": 30, "text": "Call back"}
    )
    assert status == 201 and reminder["status"] == "pending"
    status, cancelled = await desk.api(
        "ana", "POST", base, json={"kind": "reminder", "in_minutes": 20, "text": "Never"}
    )
    status, _ = await desk.api("ana", "POST", f"{base}/{cancelled['id']}/cancel")
    assert status == 200
    status, _ = await desk.api("ana", "POST", f"{base}/{cancelled['id']}/cancel")
    assert status == 409
    clock.advance(minutes=30)
    assert (await desk.app[SCHEDULER].run_due()).done == 1
    [mail] = await relay.wait_for(1)
    assert mail["To"] == "ana@shop.example" and "Call back" in body_text(mail)
    statuses = {i["text"]: i["status"] for i in (await detail(desk, cid))["scheduled"]}
    assert statuses == {"Call back": "done", "Never": "cancelled"}


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "reminder"},
        {"kind": "reminder", "in_minutes": 0},
        {"kind": "reminder", "in_minutes": True},
        {"kind": "reminder", "due_at": "2026-11-26T09:00:00"},
        {"kind": "reminder", "due_at": None},
        {"kind": "reminder", "in_minutes": 5, "text": None},
        {"kind": "party", "in_minutes": 5},
        {"kind": "reminder", "in_minutes": 5, "due_at": "2030-01-01T00:00:00+00:00"},
    ],
)
async def test_a_bad_schedule_request_is_a_clear_400(desk: Service, body: dict[str, Any]) -> None:
    memory = desk.memory
    receipt = await memory.inject(
        memory.message("I want to talk to a person", external_id="bad-1", sender="bad")
    )
    status, error = await desk.api(
        "ana", "POST", f"/api/agent/conversations/{receipt.conversation_id}/scheduled", json=body
    )
    assert status == 400 and error["error"]["code"] == "invalid_body"


async def test_two_nodes_never_send_the_same_follow_up_twice(
    postgres: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> None:
    overrides = settings(relay.port)
    async with (
        running_service(
            tmp_path / "a", database=postgres, overrides=overrides, clock=clock, drive_sweeps=True
        ) as a,
        running_service(
            tmp_path / "b", database=postgres, overrides=overrides, clock=clock, drive_sweeps=True
        ) as b,
    ):
        await a.add_agent("ana")
        b.tokens["ana"] = a.tokens["ana"]
        ids = [await served(a, f"twin-{n}") for n in range(10)]
        clock.set(at("2026-11-29T12:00"))
        first, second = await asyncio.gather(a.app[SCHEDULER].run_due(), b.app[SCHEDULER].run_due())
        assert first.done + second.done == len(ids)
        async with a.db.read() as repo:
            for cid in ids:
                messages = await repo.messages(cid)
                assert [m.kind for m in messages].count("follow_up") == 1
        for cid in ids:
            conversation = (await detail(a, cid))["status"]
            assert conversation == ConversationStatus.RESOLVED.value
