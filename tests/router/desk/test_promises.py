"""Promises kept in business hours: what the customer is told, the SLA clock, alerts.

The service runs for real (memory channel, the email relay for alerts) on a fake
clock the test turns; ``Scheduler.run_due`` is what the service's loop runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.conversations import Priority
from router.delivery.events import AgentAlert, SlaAlert
from router.keys import SCHEDULER
from router.storage import Database
from tests.channels.test_email import email_overrides
from tests.support.clock import FakeClock
from tests.support.mail import Relay, body_text
from tests.support.service import Service, running_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUPERVISOR = "lead@shop.example"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def promises(relay_port: int) -> dict[str, Any]:
    return {
        **email_overrides(relay_port),
        "sla": {
            "timezone": "Asia/Shanghai",
            "calendars": {"default": {"hours": {"daily": "09:00-21:00"}}},
            "policies": [
                {
                    "name": "chat",
                    "channels": ["memory"],
                    "first_response": "1h",
                    "next_response": "30m",
                    "resolution": "8h",
                    "warn_before": "10m",
                    "escalate": "raise_priority",
                    "follow_up": "72h",
                }
            ],
            "supervisor_email": SUPERVISOR,
        },
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("2026-11-26T05:57"))


@pytest.fixture
async def desk(
    database: Database, tmp_path: Path, relay: Relay, clock: FakeClock
) -> AsyncIterator[Service]:
    async with running_service(
        tmp_path,
        database=database,
        overrides=promises(relay.port),
        clock=clock,
        drive_sweeps=True,
    ) as running:
        await running.add_agent("ana")
        yield running


async def hand_off(service: Service, text: str, *, sender: str) -> tuple[int, str]:
    memory = service.memory
    before = len(memory.sent)
    receipt = await memory.inject(memory.message(text, external_id=f"{sender}-h", sender=sender))
    sent = await memory.wait_for_sent(before + 1)
    assert sent[-1].kind == "ack"
    return receipt.conversation_id, sent[-1].text


async def test_before_opening_the_customer_hears_when_we_open_and_the_real_promise(
    desk: Service,
) -> None:
    _, english = await hand_off(desk, "I want to talk to a person", sender="early-en")
    assert "closed right now and open at 09:00" in english
    assert "answer by 10:00" in english and "06:57" not in english
    _, chinese = await hand_off(desk, "转人工", sender="early-zh")
    assert (
        "非工作时间" in chinese and "今天 09:00" in chinese and "10:00 (北京时间) 前回复" in chinese
    )


async def test_inside_hours_the_promise_is_an_hour_and_no_closed_notice(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T14:00"))
    _, notice = await hand_off(desk, "I want to talk to a person", sender="afternoon")
    assert "answer by 15:00" in notice and "closed" not in notice


async def test_a_minute_before_closing_the_promise_is_kept_tomorrow_morning(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T20:59"))
    _, notice = await hand_off(desk, "I want to talk to a person", sender="late")
    assert "answer by tomorrow 09:59" in notice


async def test_a_traditional_chinese_customer_is_answered_in_traditional_script(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T14:00"))
    _, notice = await hand_off(desk, "請幫我轉人工客服", sender="taipei")
    assert "轉接人工客服" in notice and "转接" not in notice


async def test_a_question_to_the_customer_stops_the_resolution_clock_until_they_write(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T10:00"))
    cid, _ = await hand_off(desk, "I want to talk to a person", sender="paused")
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    clock.set(at("2026-11-26T10:30"))
    status, _ = await desk.api(
        "ana",
        "POST",
        f"/api/agent/conversations/{cid}/reply",
        json={"text": "Could you send a photo of the label?"},
    )
    assert status == 202
    _, detail = await desk.api("ana", "GET", f"/api/agent/conversations/{cid}")
    timers = {p["metric"]: p for p in detail["promises"]}
    assert timers["first_response"]["outcome"] == "met"
    assert timers["resolution"]["due_at"] is None
    assert timers["resolution"]["paused_with_seconds_left"] == 7.5 * 3600
    assert detail["waiting_on_customer_since"] is not None

    # They answer at 20:00: 7.5 open hours are left, one today (until 21:00).
    clock.set(at("2026-11-26T20:00"))
    memory = desk.memory
    await memory.inject(memory.message("Here it is", external_id="paused-2", sender="paused"))
    _, detail = await desk.api("ana", "GET", f"/api/agent/conversations/{cid}")
    timers = {p["metric"]: p for p in detail["promises"]}
    resolution = datetime.fromisoformat(timers["resolution"]["due_at"])
    assert resolution == at("2026-11-27T15:30")
    assert datetime.fromisoformat(timers["next_response"]["due_at"]) == at("2026-11-26T20:30")
    assert detail["waiting_on_customer_since"] is None
    # The queue is ordered by the earliest running promise.
    assert datetime.fromisoformat(detail["sla_due_at"]) == at("2026-11-26T20:30")


async def test_a_warning_then_a_breach_are_raised_once_mailed_and_escalated(
    desk: Service, clock: FakeClock, relay: Relay
) -> None:
    clock.set(at("2026-11-26T10:00"))
    cid, _ = await hand_off(desk, "I want to talk to a person", sender="waiting")
    scheduler = desk.app[SCHEDULER]
    async with desk.events.subscribe() as events:
        clock.set(at("2026-11-26T10:49"))
        assert (await scheduler.run_due()).alerts == []
        clock.set(at("2026-11-26T10:50"))
        [warning] = (await scheduler.run_due()).alerts
        assert (warning.metric, warning.level) == ("first_response", "warning")
        assert (await scheduler.run_due()).alerts == []  # once only
        clock.set(at("2026-11-26T11:01"))
        [breach] = (await scheduler.run_due()).alerts
        assert (breach.level, breach.escalated) == ("breach", "priority raised to high")
        seen = []
        while len(seen) < 2:
            event = await events.get()
            if isinstance(event, SlaAlert):
                seen.append(event.level)
        assert seen == ["warning", "breach"]
    mails = await relay.wait_for(2)
    assert {m["To"] for m in mails} == {SUPERVISOR}
    assert "due soon" in mails[0]["Subject"] and "missed" in mails[1]["Subject"]
    assert f"#{cid}" in body_text(mails[1]) and "11:00" in body_text(mails[1])
    async with desk.db.read() as repo:
        conversation = await repo.conversation(cid)
    assert conversation is not None and conversation.priority is Priority.HIGH


async def test_the_assignee_is_mailed_when_a_conversation_is_handed_to_them(
    desk: Service, clock: FakeClock, relay: Relay
) -> None:
    clock.set(at("2026-11-26T10:00"))
    await desk.add_agent("lead")
    async with desk.db.write() as repo:
        ana = await repo.agent_by_name("ana")
        assert ana is not None
        await repo.set_agent_email(ana.id, "ana@shop.example")
    cid, _ = await hand_off(desk, "I want to talk to a person", sender="handed")
    async with desk.events.subscribe() as events:
        status, _ = await desk.api(
            "lead",
            "POST",
            f"/api/agent/conversations/{cid}/claim",
        )
        assert status == 200
        # The lead passes it on to Ana.
        from router.keys import DESK

        lead = await _agent(desk, "lead")
        await desk.app[DESK].assign(cid, lead, ana)
        alert = await _next(events, AgentAlert)
    assert alert.agent_id == ana.id and alert.kind == "assigned"
    [mail] = await relay.wait_for(1)
    assert mail["To"] == "ana@shop.example" and f"#{cid}" in mail["Subject"]
    assert "by lead" in body_text(mail)


async def _agent(service: Service, name: str) -> Any:
    async with service.db.read() as repo:
        return await repo.agent_by_name(name)


async def _next(events: Any, kind: type) -> Any:
    while True:
        event = await events.get()
        if isinstance(event, kind):
            return event


async def test_a_resolved_conversation_is_timed_met_or_missed_in_open_time(
    desk: Service, clock: FakeClock
) -> None:
    clock.set(at("2026-11-26T20:00"))
    cid, _ = await hand_off(desk, "I want to talk to a person", sender="slow")
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    # Answered the next morning at 09:30: 90 open minutes after the handoff (due 09:00).
    clock.set(at("2026-11-27T09:30"))
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "Done."})
    clock.set(at("2026-11-27T10:00"))
    await desk.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    _, detail = await desk.api("ana", "GET", f"/api/agent/conversations/{cid}")
    outcomes = {p["metric"]: (p["outcome"], p["late_seconds"]) for p in detail["promises"]}
    assert outcomes == {
        "first_response": ("missed", timedelta(minutes=30).total_seconds()),
        "resolution": ("met", -timedelta(hours=6).total_seconds()),
    }
    assert detail["sla_due_at"] is None
