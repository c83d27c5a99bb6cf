"""The agent API's edges: authentication, unknown ids, bad bodies, one error shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from router.delivery.events import KnowledgeReloaded, Subscription
from router.keys import BOT
from tests.support.service import Service, running_service
from tests.support.webchat import Visitor


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
async def test_missing_or_wrong_tokens_get_401(
    sqlite_service: Service, headers: dict[str, str]
) -> None:
    async with sqlite_service.client.get("/api/agent/conversations", headers=headers) as response:
        assert response.status == 401
        body = await response.json()
    assert body["error"]["code"] == "unauthorized" and body["error"]["message"]


async def test_unknown_ids_get_404_in_the_error_shape(sqlite_service: Service) -> None:
    await sqlite_service.add_agent("ana")
    for method, path in [
        ("GET", "/api/agent/conversations/999"),
        ("POST", "/api/agent/conversations/999/claim"),
        ("GET", "/api/agent/conversations/not-a-number"),
        ("GET", "/api/agent/nothing-here"),
    ]:
        status, body = await sqlite_service.api("ana", method, path)
        assert status == 404, path
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


async def test_bad_bodies_and_queries_get_400(sqlite_service: Service) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    receipt = await service.memory.inject(service.memory.message("转人工", external_id="x"))
    path = f"/api/agent/conversations/{receipt.conversation_id}"
    await service.api("ana", "POST", path + "/claim")
    for body in [None, [], {"text": ""}, {"text": 42}, {"text": "x" * 20_001}]:
        status, answer = await service.api("ana", "POST", path + "/reply", json=body)
        assert status == 400, body
        assert answer["error"]["code"] in {"invalid_json", "invalid_body"}
    status, answer = await service.api("ana", "GET", "/api/agent/conversations?status=maybe")
    assert status == 400 and "status must be one of" in answer["error"]["message"]


async def test_internal_notes_are_never_sent_to_the_customer(sqlite_service: Service) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    receipt = await service.memory.inject(service.memory.message("转人工", external_id="n"))
    path = f"/api/agent/conversations/{receipt.conversation_id}"
    status, _ = await service.api("ana", "POST", path + "/notes", json={"text": "VIP, be quick"})
    assert status == 201
    await service.api("ana", "POST", path + "/claim")
    async with service.delivered(1):
        await service.api("ana", "POST", path + "/reply", json={"text": "Hello!"})
    assert [m.text for m in service.memory.sent][-1] == "Hello!"
    assert all("VIP" not in m.text for m in service.memory.sent)
    _, detail = await service.api("ana", "GET", path)
    note = next(m for m in detail["messages"] if m["direction"] == "note")
    assert note["text"] == "VIP, be quick" and note["agent"]["name"] == "ana"


async def test_health_and_metrics(sqlite_service: Service) -> None:
    async with sqlite_service.client.get("/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok" and health["channels"]["webchat"]["ok"]
    await sqlite_service.memory.inject(sqlite_service.memory.message("hello", external_id="m"))
    async with sqlite_service.client.get("/metrics") as response:
        text = await response.text()
    assert 'relaydesk_conversations{status="bot"} 1' in text


async def test_agents_watch_events_live_and_customers_see_them_typing(
    sqlite_service: Service,
) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    headers = {"Authorization": f"Bearer {service.tokens['ana']}"}
    async with service.client.ws_connect("/api/agent/events", headers=headers) as feed:
        customer = Visitor(service.client)
        await customer.connect()
        await customer.ask("talk to a person")
        seen = [await feed.receive_json(timeout=5) for _ in range(3)]
        assert [e["type"] for e in seen] == [
            "message_added",
            "message_added",
            "conversation_changed",
        ]
        cid = seen[0]["conversation_id"]
        assert seen[2]["status"] == "queued"

        await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
        status, _ = await service.api("ana", "POST", f"/api/agent/conversations/{cid}/typing")
        assert status == 202
        typing = await customer.wait_for(lambda f: f.get("type") == "typing")
        assert typing["author"] == "agent" and "ana" not in str(typing)
        await customer.close()


async def test_the_event_feed_needs_a_token(sqlite_service: Service) -> None:
    async with sqlite_service.client.get("/api/agent/events") as response:
        assert response.status == 401


async def test_an_edited_knowledge_base_answers_without_a_restart(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yaml").write_text(
        "- id: hours\n  questions: ['When are you open?']\n  answer: Nine to five.\n"
    )
    overrides = {"knowledge": {"path": str(kb), "reload_seconds": 0.05}}
    async with running_service(tmp_path, overrides=overrides) as service:
        memory = service.memory
        await memory.inject(memory.message("Do you ship to Norway?", external_id="1", sender="a"))
        [before] = await memory.wait_for_sent(1)
        assert before.kind == "ack"  # nobody knew: handed off

        bot = service.app[BOT]
        async with service.events.subscribe() as events:
            (kb / "shipping.md").write_text("## Do you ship to Norway?\nYes, in 5 days.\n")
            reloaded = await _next_reload(events)
            assert reloaded.error is None and reloaded.entries == 2
            await memory.inject(
                memory.message("Do you ship to Norway?", external_id="2", sender="b")
            )
            after = (await memory.wait_for_sent(2))[-1]
            assert after.kind == "answer" and after.text == "Yes, in 5 days."

            # A broken file: reported with its line, and the last good one keeps answering.
            good = bot.matcher
            (kb / "broken.yaml").write_text("- id: x\n  questions: [unclosed\n")
            failed = await _next_reload(events)
            assert failed.error is not None and "broken.yaml:" in failed.error
            assert bot.matcher is good
            await memory.inject(
                memory.message("Do you ship to Norway?", external_id="3", sender="c")
            )
            assert (await memory.wait_for_sent(3))[-1].text == "Yes, in 5 days."


async def _next_reload(events: Subscription) -> KnowledgeReloaded:
    async with asyncio.timeout(10):
        while True:
            event = await events.get()
            if isinstance(event, KnowledgeReloaded):
                return event


async def test_an_integration_can_do_what_an_agent_does(sqlite_service: Service) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    await service.add_agent("bo")
    async with service.db.read() as repo:
        bo = await repo.agent_by_name("bo")
    assert bo is not None
    receipt = await service.memory.inject(service.memory.message("转人工", external_id="par"))
    path = f"/api/agent/conversations/{receipt.conversation_id}"

    status, body = await service.api(
        "ana", "PATCH", path, json={"tags": ["vip", " repair ", "vip"], "priority": "high"}
    )
    assert status == 200 and body["tags"] == ["repair", "vip"] and body["priority"] == "high"
    # Transfer: anyone may give an unowned conversation away; then only its owner.
    status, body = await service.api("ana", "POST", path + "/assign", json={"agent_id": bo.id})
    assert status == 200 and body["assignee"] == {"id": bo.id, "name": "bo"}
    status, body = await service.api("ana", "POST", path + "/assign", json={"agent_id": None})
    assert status == 409 and body["error"]["code"] == "not_assigned_to_you"
    status, body = await service.api("bo", "POST", path + "/assign", json={"agent_id": None})
    assert status == 200 and body["status"] == "queued" and body["assignee"] is None

    await service.api("bo", "POST", path + "/claim")
    await service.api("bo", "POST", path + "/resolve")
    status, body = await service.api("ana", "POST", path + "/reopen")
    assert status == 200 and body["status"] == "assigned" and body["assignee"]["name"] == "ana"

    for method, suffix, bad in [
        ("POST", "/assign", {}),
        ("POST", "/assign", {"agent_id": "bo"}),
        ("POST", "/assign", {"agent_id": True}),
        ("PATCH", "", {}),
        ("PATCH", "", {"priority": "asap"}),
        ("PATCH", "", {"tags": "vip"}),
        ("PATCH", "", {"tags": [1]}),
        ("PATCH", "", {"priority": None}),
        ("POST", "/reopen", {"agent_id": -1}),
    ]:
        status, body = await service.api("ana", method, path + suffix, json=bad)
        assert status == 400, (suffix, bad)
        assert body["error"]["code"] == "invalid_body"
    status, body = await service.api("ana", "POST", path + "/assign", json={"agent_id": 99999})
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_an_open_live_feed_never_holds_the_service_up_at_shutdown(
    sqlite_service: Service,
) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    headers = {"Authorization": f"Bearer {service.tokens['ana']}"}
    async with service.client.ws_connect("/api/agent/events", headers=headers) as feed:
        # What the server does when it is asked to stop (SIGTERM, a deploy).
        await service.app.shutdown()
        closing = await feed.receive(timeout=5)
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
