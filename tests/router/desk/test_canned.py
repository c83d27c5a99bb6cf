"""Saved replies and macros: who sees and changes which, finding one by a few words,
placeholders filled for the conversation, and a macro's actions applied with its reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.conversations import Priority
from router.desk.canned import search
from router.storage import Database
from router.storage.canned_queries import CannedReply
from tests.support.service import Service, running_service

ROUTING = {
    "teams": {
        "repairs": {"name": "Repairs", "members": ["ana"]},
        "billing": {"name": "Billing", "members": ["bo"]},
    }
}


@pytest.fixture
async def desk(database: Database, tmp_path: Path) -> AsyncIterator[Service]:
    overrides = {"routing": ROUTING, "sla": {"timezone": "Asia/Shanghai"}}
    async with running_service(tmp_path, database=database, overrides=overrides) as service:
        for name in ("ana", "bo"):
            await service.add_agent(name)
        await service.add_agent("lead", role="admin")
        yield service


async def save(service: Service, agent: str, **body: Any) -> tuple[int, Any]:
    return await service.api(agent, "POST", "/api/agent/canned", json=body)


async def titles(service: Service, agent: str, q: str = "") -> list[str]:
    status, body = await service.api(agent, "GET", f"/api/agent/canned?q={q}")
    assert status == 200
    return [r["title"] for r in body["replies"]]


async def test_each_agent_sees_their_own_their_teams_and_everyones(desk: Service) -> None:
    status, mine = await save(desk, "ana", title="Ana's greeting", text="Hi, Ana here.")
    assert status == 201 and mine["scope"] == "mine" and mine["may_change"]
    status, team = await save(
        desk, "ana", title="Repair visit", text="A technician comes.", scope="team:repairs"
    )
    assert status == 201 and team["scope"] == "team" and team["team"] == "repairs"
    assert (await save(desk, "ana", title="x", text="y", scope="team:billing"))[0] == 403
    assert (await save(desk, "ana", title="x", text="y", scope="everyone"))[0] == 403
    assert (await save(desk, "ana", title="x", text="y", scope="team:nobody"))[0] == 404
    status, shared = await save(
        desk, "lead", title="Opening hours", text="9 to 9.", scope="everyone"
    )
    assert status == 201

    assert await titles(desk, "ana") == ["Ana's greeting", "Opening hours", "Repair visit"]
    assert await titles(desk, "bo") == ["Opening hours"]
    assert await titles(desk, "lead") == ["Opening hours", "Repair visit"]

    # Someone else's: invisible (404) to change or delete; a team's: its members, admins.
    body = {"title": "Mine now", "text": "..."}
    path = "/api/agent/canned/{}"
    assert (await desk.api("bo", "PUT", path.format(mine["id"]), json=body))[0] == 404
    assert (await desk.api("bo", "DELETE", path.format(team["id"])))[0] == 404
    assert (await desk.api("ana", "DELETE", path.format(shared["id"])))[0] == 403
    status, changed = await desk.api("ana", "PUT", path.format(team["id"]), json=body)
    assert status == 200 and changed["title"] == "Mine now" and changed["scope"] == "team"
    assert (await desk.api("lead", "DELETE", path.format(team["id"])))[0] == 200
    assert await titles(desk, "ana") == ["Ana's greeting", "Opening hours"]
    _, log = await desk.api("lead", "GET", "/api/agent/audit")
    actions = [e["action"] for e in log["entries"] if e["target"] == "canned_reply"]
    assert actions == ["delete_canned", "change_canned", "add_canned", "add_canned"]

    for bad in [
        {"text": "no title"},
        {"title": "", "text": "x"},
        {"title": "x", "text": " "},
        {"title": "x", "text": "y", "scope": "ours"},
        {"title": "x", "text": "y", "tags": "vip"},
        {"title": "x", "text": "y", "priority": "asap"},
        {"title": "x", "text": "y", "resolve": "yes"},
        {"title": "x", "text": "y", "colour": "red"},
    ]:
        status, answer = await save(desk, "ana", **bad)
        assert status == 400, bad
        assert answer["error"]["code"] == "invalid_body"


def reply(title: str, text: str = "") -> CannedReply:
    now = datetime(2026, 12, 1)
    return CannedReply(1, title, text, None, None, (), None, False, now, now)


def test_a_reply_is_found_by_a_few_words_with_a_typo_or_in_the_other_script() -> None:
    replies = [
        reply("Refund status", "Your refund reaches your account in 3-5 working days."),
        reply("发票重开", "我们会在一个工作日内重新开具发票。"),
        reply("Opening hours", "We answer from 9:00 to 21:00."),
    ]
    assert [r.title for r in search(replies, "refnd")] == ["Refund status"]
    assert [r.title for r in search(replies, "發票")] == ["发票重开"]
    assert [r.title for r in search(replies, "working days")] == ["Refund status"]
    assert search(replies, "spaceship") == []


async def test_placeholders_are_filled_and_a_macro_acts_with_its_reply(desk: Service) -> None:
    memory = desk.memory
    receipt = await memory.inject(memory.message("我要退款，转人工", external_id="m-1"))
    cid = receipt.conversation_id
    await memory.wait_for_sent(1)
    path = f"/api/agent/conversations/{cid}"
    await desk.api("ana", "POST", path + "/claim")
    _, macro = await save(
        desk,
        "ana",
        title="退款已处理",
        text="{客户}您好，工单 {ticket} 的退款已提交，{promised_time} 前到账。—{agent_name}",
        tags=["refund"],
        priority="high",
        resolve=True,
    )
    assert macro["macro"] is True
    status, found = await desk.api("ana", "GET", f"/api/agent/canned?q=退款&conversation_id={cid}")
    [item] = found["replies"]
    _, detail = await desk.api("ana", "GET", path)
    due = datetime.fromisoformat(detail["sla_due_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert item["filled"] == (
        f"customer-1您好，工单 #{cid} 的退款已提交，{due:%Y-%m-%d %H:%M} 前到账。—ana"
    )

    # Bo may not use Ana's own macro.
    status, body = await desk.api(
        "bo", "POST", path + "/reply", json={"text": "x", "macro_id": macro["id"]}
    )
    assert status == 404 and body["error"]["code"] == "canned_not_found"
    status, _ = await desk.api(
        "ana", "POST", path + "/reply", json={"text": item["filled"], "macro_id": macro["id"]}
    )
    assert status == 202
    sent = await memory.wait_for_sent(3)
    assert sent[1].text == item["filled"]
    _, detail = await desk.api("ana", "GET", path)
    assert detail["status"] == "resolved" and detail["tags"] == ["refund"]
    assert detail["priority"] == Priority.HIGH.label
    _, log = await desk.api("lead", "GET", "/api/agent/audit?action=macro")
    assert [e["detail"]["title"] for e in log["entries"]] == ["退款已处理"]
    status, _ = await desk.api("ana", "POST", path + "/reply", json={"text": "x", "macro_id": "1"})
    assert status == 400
