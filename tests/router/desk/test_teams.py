"""Teams and routing rules at work: a handoff lands in the team its rule names, with the
rule on the handoff card; team queues, transfers, team-only auto-assignment, and an
admin changing the rules while the service runs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.builders import utc_now
from router.delivery.events import ConversationChanged
from router.inbox import hash_token
from router.inbox.keys import AUTO_ASSIGNER
from router.storage import Database
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.service import Service, running_service

ROUTING: dict[str, Any] = {
    "teams": {
        "repairs": {"name": "Repairs", "members": ["ana"]},
        "billing": {"name": "Billing", "members": ["bo", "ana"]},
    },
    "rules": [
        {
            "name": "VIP customers",
            "when": {"contact": {"vip": True}},
            "then": {"team": "repairs", "priority": "urgent", "sla_policy": "vip"},
        },
        {
            "name": "Invoices",
            "when": {"keywords": ["发票", "invoice"]},
            "then": {"team": "billing", "priority": "high", "tags": ["invoice"]},
        },
    ],
}
# Chosen by its own conditions only for conversations tagged vip; the VIP rule names it.
SLA: dict[str, Any] = {
    "policies": [
        {"name": "vip", "tags": ["vip"], "first_response": 10},
        # A team's own promise: chosen by the team the rule gave the conversation.
        {"name": "billing-desk", "teams": ["billing"], "first_response": 30},
    ]
}


async def add_admin(service: Service, name: str) -> None:
    token = secrets.token_urlsafe(24)
    async with service.db.write() as repo:
        await repo.add_agent(name=name, token_hash=hash_token(token), now=utc_now(), role="admin")
    service.tokens[name] = token


@pytest.fixture
async def desk(database: Database, tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(
        tmp_path, database=database, overrides={"routing": ROUTING, "sla": SLA}
    ) as service:
        for name in ("ana", "bo"):
            await service.add_agent(name)
        await add_admin(service, "lead")
        yield service


async def write(service: Service, text: str, sender: str) -> int:
    memory = service.memory
    receipt = await memory.inject(memory.message(text, external_id=f"{sender}-1", sender=sender))
    return receipt.conversation_id


async def conversation(service: Service, cid: int) -> dict[str, Any]:
    status, body = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert status == 200
    return dict(body)


async def test_a_handoff_goes_where_its_rule_says_and_the_card_says_why(desk: Service) -> None:
    cid = await write(desk, "转人工，我的發票开错了", "mei")
    body = await conversation(desk, cid)
    assert body["status"] == "queued" and body["team"] == "billing"
    assert body["priority"] == "high" and body["tags"] == ["invoice"]
    assert body["sla_policy"] == "billing-desk"
    [handoff] = body["handoffs"]
    routed = handoff["context"]["routed"]
    assert (routed["rule"], routed["name"], routed["team_name"]) == (2, "Invoices", "Billing")

    # Nothing matches: everyone's queue, as before teams.
    other = await conversation(desk, await write(desk, "talk to a person", "tom"))
    assert other["team"] is None and "routed" not in other["handoffs"][0]["context"]
    assert other["priority"] == "normal" and other["sla_policy"] == "default"

    # The reports narrow to a team.
    for team, count in [("billing", 1), ("repairs", 0), ("", 2)]:
        status, report = await desk.api("lead", "GET", f"/api/agent/reports?team={team}")
        assert status == 200 and report["volume"]["conversations"] == count, team


async def test_what_the_shop_says_of_a_contact_routes_their_next_handoff(desk: Service) -> None:
    first = await conversation(desk, await write(desk, "hello", "vip-1"))
    contact = first["contact_id"]
    path = f"/api/agent/contacts/{contact}/attributes"
    status, body = await desk.api("ana", "PUT", path, json={"vip": True, "tier": "gold"})
    assert status == 200 and body["attributes"] == {"vip": True, "tier": "gold"}
    memory = desk.memory
    await memory.inject(memory.message("转人工", external_id="vip-2", sender="vip-1"))
    body = await conversation(desk, first["id"])
    assert body["team"] == "repairs" and body["priority"] == "urgent"
    assert body["sla_policy"] == "vip"

    for bad in [{"vip": None}, {"vip": [1]}, {"x": "y" * 201}, {str(i): 1 for i in range(31)}]:
        status, _ = await desk.api("ana", "PUT", path, json=bad)
        assert status == 400, bad
    status, _ = await desk.api("ana", "PUT", "/api/agent/contacts/99999/attributes", json={})
    assert status == 404
    _, log = await desk.api("lead", "GET", "/api/agent/audit?action=set_attributes")
    assert [e["target_id"] for e in log["entries"]] == [contact]


async def test_team_queues_and_transfers(desk: Service) -> None:
    billing = await write(desk, "invoice please, talk to a person", "a")
    plain = await write(desk, "talk to a person", "b")

    async def listed(agent: str, query: str) -> list[int]:
        status, body = await desk.api(agent, "GET", "/api/agent/conversations?" + query)
        assert status == 200, body
        return [c["id"] for c in body["conversations"]]

    assert await listed("bo", "team=billing") == [billing]
    assert await listed("bo", "team=mine") == [billing]
    assert await listed("bo", "team=repairs") == []
    assert set(await listed("bo", "status=open")) == {billing, plain}
    status, _ = await desk.api("bo", "GET", "/api/agent/conversations?team=nobody")
    assert status == 400

    path = f"/api/agent/conversations/{plain}/assign"
    status, body = await desk.api("bo", "POST", path, json={"team": "repairs"})
    assert status == 200 and body["team"] == "repairs" and body["status"] == "queued"
    assert await listed("ana", "team=repairs") == [plain]
    async with desk.db.read() as repo:
        ana = await repo.agent_by_name("ana")
    assert ana is not None
    status, body = await desk.api("bo", "POST", path, json={"team": "billing", "agent_id": ana.id})
    assert status == 200 and body["team"] == "billing" and body["assignee"]["name"] == "ana"
    # Now it is Ana's: Bo may not move it; back to everyone's queue by its owner.
    status, body = await desk.api("bo", "POST", path, json={"team": None})
    assert status == 409 and body["error"]["code"] == "not_assigned_to_you"
    status, body = await desk.api("ana", "POST", path, json={"team": None})
    assert status == 200 and body["team"] is None and body["assignee"] is None

    status, body = await desk.api("ana", "POST", path, json={"team": "nobody"})
    assert status == 404 and body["error"]["code"] == "team_not_found"
    for bad in [{"team": 3}, {"team": ""}, {"team": "billing", "colour": "red"}]:
        status, _ = await desk.api("ana", "POST", path, json=bad)
        assert status == 400, bad
    _, log = await desk.api("lead", "GET", "/api/agent/audit?action=transfer")
    moves = [(e["detail"].get("previous_team"), e["detail"].get("team")) for e in log["entries"]]
    assert moves == [("billing", None), ("repairs", "billing"), (None, "repairs")]


async def test_an_admin_changes_teams_and_rules_while_the_service_runs(desk: Service) -> None:
    status, body = await desk.api("ana", "GET", "/api/agent/routing")
    assert status == 200 and sorted(body["my_teams"]) == ["billing", "repairs"]
    assert [r["name"] for r in body["rules"]] == ["VIP customers", "Invoices"]
    assert body["rules"][1]["when"] == {"keywords": ["发票", "invoice"]}

    changed = {
        "teams": {"returns": {"name": "Returns", "members": ["bo"]}},
        "rules": [{"when": {"keywords": ["退货"]}, "then": {"team": "returns"}}],
    }
    status, _ = await desk.api("ana", "PUT", "/api/agent/routing", json=changed)
    assert status == 403
    status, body = await desk.api("lead", "PUT", "/api/agent/routing", json=changed)
    assert status == 200 and [t["key"] for t in body["teams"]] == ["returns"]
    body = await conversation(desk, await write(desk, "转人工，我要退货", "c"))
    assert body["team"] == "returns"

    wrong = {"rules": [{"then": {"team": "nobody", "sla_policy": "gold"}}]}
    status, body = await desk.api("lead", "PUT", "/api/agent/routing", json=wrong)
    assert status == 400 and "team 'nobody' is not in routing.teams" in body["error"]["message"]
    wrong = {"rules": [{"then": {"sla_policy": "gold"}}]}
    status, body = await desk.api("lead", "PUT", "/api/agent/routing", json=wrong)
    assert status == 400
    assert "routing.rules[1].then.sla_policy: 'gold'" in body["error"]["message"]

    # An SLA policy a rule uses cannot be removed from under it.
    await desk.api("lead", "PUT", "/api/agent/routing", json=ROUTING)
    status, body = await desk.api("lead", "PUT", "/api/agent/sla", json={"policies": []})
    assert status == 400 and "change the routing rule first" in body["error"]["message"]
    _, log = await desk.api("lead", "GET", "/api/agent/audit?action=change_settings")
    assert [e["detail"]["key"] for e in log["entries"]] == ["routing", "routing"]


async def assigned(events: Any, conversation_id: int) -> ConversationChanged:
    async with asyncio.timeout(5):
        while True:
            event = await events.get()
            if (
                isinstance(event, ConversationChanged)
                and event.conversation_id == conversation_id
                and event.status == "assigned"
            ):
                return event


async def test_auto_assignment_gives_a_teams_conversation_only_to_its_members(
    tmp_path: Path,
) -> None:
    overrides = {
        "inbox": {"auto_assign": True, "capacity": 5},
        "routing": {
            "teams": {"repairs": {"members": ["Bo"], "capacity": 1}},
            "rules": [{"when": {"keywords": ["修"]}, "then": {"team": "repairs"}}],
        },
    }
    async with running_service(tmp_path, overrides=overrides) as service:
        await add_inbox_agent(service, "Ana")
        await add_inbox_agent(service, "Bo")
        ana, bo = InboxSession(service), InboxSession(service)
        await ana.login("Ana")
        await bo.login("Bo")
        async with service.db.read() as repo:
            bo_id = (await repo.agent_by_name("Bo")).id  # type: ignore[union-attr]
            ana_id = (await repo.agent_by_name("Ana")).id  # type: ignore[union-attr]
        assigner = service.app[AUTO_ASSIGNER]
        async with (
            ana.http.ws_connect("/inbox/ws") as ana_live,
            service.events.subscribe() as events,
        ):
            # Only Ana is online: the repairs conversation waits for its team.
            repair = await write(service, "转人工，洗衣机要修", "c1")
            rounds = assigner.rounds
            async with assigner.done:
                await assigner.done.wait_for(lambda: assigner.rounds > rounds)
            async with service.db.read() as repo:
                waiting = await repo.conversation(repair)
            assert waiting is not None and waiting.assignee_id is None
            async with bo.http.ws_connect("/inbox/ws") as bo_live:
                assert (await assigned(events, repair)).assignee_id == bo_id
                # Bo is at the team's capacity of 1: the next repair waits; anything
                # else goes to whoever has room.
                second = await write(service, "转人工，还有电视要修", "c2")
                plain = await write(service, "talk to a person", "c3")
                assert (await assigned(events, plain)).assignee_id in (ana_id, bo_id)
                async with service.db.read() as repo:
                    later = await repo.conversation(second)
                assert later is not None and later.assignee_id is None
                await bo_live.close()
            await ana_live.close()
        await ana.close()
        await bo.close()
