"""``inbox.team_visibility: own``: an agent of Repairs neither sees, claims nor answers a
Billing conversation, in the API, the pages or the live feeds; leads see every team
(issue 31, item 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.storage import Database
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.service import Service, running_service

ROUTING: dict[str, Any] = {
    "teams": {
        "repairs": {"name": "Repairs", "members": ["rita"]},
        "billing": {"name": "Billing", "members": ["bill"]},
    },
    "rules": [
        {"name": "Repairs", "when": {"keywords": ["修"]}, "then": {"team": "repairs"}},
        {"name": "Invoices", "when": {"keywords": ["发票"]}, "then": {"team": "billing"}},
    ],
}


@pytest.fixture
async def desk(database: Database, tmp_path: Path) -> AsyncIterator[Service]:
    overrides = {"routing": ROUTING, "inbox": {"team_visibility": "own"}}
    async with running_service(tmp_path, database=database, overrides=overrides) as service:
        for name in ("rita", "bill"):
            await service.add_agent(name)
        await service.add_agent("lead", role="lead")
        yield service


async def write(service: Service, text: str, sender: str, n: int = 1) -> int:
    memory = service.memory
    receipt = await memory.inject(memory.message(text, external_id=f"{sender}-{n}", sender=sender))
    return receipt.conversation_id


async def test_an_agent_sees_claims_and_answers_only_their_teams_conversations(
    desk: Service,
) -> None:
    invoice = await write(desk, "转人工，我的发票开错了", "c1")
    repair = await write(desk, "转人工，洗衣机要修", "c2")
    anyone = await write(desk, "talk to a person", "c3")

    _, listed = await desk.api("rita", "GET", "/api/agent/conversations")
    assert {c["id"] for c in listed["conversations"]} == {repair, anyone}
    base = f"/api/agent/conversations/{invoice}"
    assert (await desk.api("rita", "GET", base))[0] == 403
    assert (await desk.api("rita", "POST", f"{base}/claim"))[0] == 403
    assert (await desk.api("rita", "POST", f"{base}/notes", {"text": "mine now"}))[0] == 403
    assert (await desk.api("rita", "GET", f"{base}/scheduled"))[0] == 403
    status, _ = await desk.api("rita", "POST", f"{base}/reply", {"text": "hello"})
    assert status in (403, 409)
    assert (await desk.api("rita", "POST", f"/api/agent/conversations/{repair}/claim"))[0] == 200

    # Bill works Billing; a lead sees every team.
    assert (await desk.api("bill", "POST", f"{base}/claim"))[0] == 200
    _, everything = await desk.api("lead", "GET", "/api/agent/conversations")
    assert {c["id"] for c in everything["conversations"]} == {invoice, repair, anyone}
    assert (await desk.api("lead", "GET", base))[0] == 200

    # Handed to her by name, a conversation of another team is hers to see.
    async with desk.db.read() as repo:
        rita = await repo.agent_by_name("rita")
    assert rita is not None
    status, _ = await desk.api("bill", "POST", f"{base}/assign", {"agent_id": rita.id})
    assert status == 200
    assert (await desk.api("rita", "GET", base))[0] == 200


async def test_the_pages_show_an_agent_only_their_teams_conversations(desk: Service) -> None:
    invoice = await write(desk, "转人工，我的发票开错了", "c1")
    repair = await write(desk, "转人工，洗衣机要修", "c2")
    await add_inbox_agent(desk, "Rita")
    routing = {**ROUTING, "teams": {**ROUTING["teams"]}}
    routing["teams"]["repairs"] = {"name": "Repairs", "members": ["Rita"]}
    status, _ = await desk.api("lead", "GET", "/api/agent/routing")
    assert status == 200
    await desk.add_agent("admin", role="admin")
    status, _ = await desk.api("admin", "PUT", "/api/agent/routing", routing)
    assert status == 200, "Rita joins Repairs"
    rita = InboxSession(desk)
    try:
        assert await rita.login("Rita") == 303
        queue = await rita.get("/inbox?tab=unassigned")
        assert f'href="/inbox/c/{repair}"' in queue
        assert f'href="/inbox/c/{invoice}"' not in queue
        async with rita.http.get(f"/inbox/c/{invoice}") as response:
            assert response.status == 403
        status, _ = await rita.post(f"/inbox/c/{invoice}/claim")
        assert status == 403
        async with desk.db.read() as repo:
            still = await repo.conversation(invoice)
        assert still is not None and still.assignee_id is None, "the claim did not happen"
    finally:
        await rita.close()


async def test_the_live_feed_carries_only_what_the_agent_may_see(desk: Service) -> None:
    invoice = await write(desk, "转人工，我的发票开错了", "c1")
    repair = await write(desk, "转人工，洗衣机要修", "c2")
    headers = {"Authorization": f"Bearer {desk.tokens['rita']}"}
    async with desk.client.ws_connect("/api/agent/events", headers=headers) as feed:
        await write(desk, "发票抬头写错了：ACME Ltd", "c1", 2)
        await write(desk, "型号是 XQG-80", "c2", 2)
        while True:
            frame = await feed.receive_json(timeout=5)
            if frame["type"] == "message_added" and frame["conversation_id"] == repair:
                break
            assert frame["conversation_id"] != invoice, frame
