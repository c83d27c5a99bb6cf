"""The API channel: a bridge posts signed messages in, and gets signed replies back."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.api import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from channels.base import ChannelAddress, InboundMessage, SenderIdentity
from tests.support.service import Service, running_service

SECRET = "bridge-secret-0123456789"
PATH = "/api/channels/whatsapp/messages"


class Bridge:
    """The far side: records replies after checking their signature; scripted statuses."""

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.statuses: deque[tuple[int, dict[str, str]]] = deque()
        self.attempts = 0
        self.changed = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = verify(
            SECRET,
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            body=body,
            now=time.time(),
            tolerance=60,
        )
        async with self.changed:
            self.attempts += 1
            self.changed.notify_all()
            if problem is not None:
                return web.Response(status=401, text=problem)
            if self.statuses:
                status, headers = self.statuses.popleft()
                return web.Response(status=status, headers=headers, text="scripted")
            self.replies.append(json.loads(body))
            self.changed.notify_all()
        return web.Response(status=204)

    async def wait_for_replies(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(lambda: len(self.replies) >= count)
            return list(self.replies)


@pytest.fixture
async def bridge() -> AsyncIterator[tuple[Bridge, str]]:
    far_side = Bridge()
    app = web.Application()
    app.router.add_post("/replies", far_side.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield far_side, str(server.make_url("/replies"))
    await server.close()


@pytest.fixture
async def service(tmp_path: Path, bridge: tuple[Bridge, str]) -> AsyncIterator[Service]:
    overrides = {"channels": {"api": {"whatsapp": {"secret": SECRET, "outbound_url": bridge[1]}}}}
    async with running_service(tmp_path, overrides=overrides) as running:
        yield running


def message(text: str, message_id: str = "wa-1", **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sender": {"id": "+8613800000000", "name": "Mei"},
        "text": text,
        **extra,
    }


async def post(
    service: Service,
    payload: Any,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(secret, stamp, body)}
    sent = signed if headers is None else headers
    async with service.client.post(PATH, data=body, headers=sent) as response:
        return response.status, await response.json()


async def test_a_signed_message_is_answered_through_the_bridge(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    status, receipt = await post(service, message("怎么申请退货？"))
    assert status == 200 and receipt["duplicate"] is False
    [reply] = await bridge[0].wait_for_replies(1)
    assert reply["recipient"] == {"id": "+8613800000000"} and reply["kind"] == "answer"
    assert "申请售后" in reply["text"] and reply["conversation_id"] == receipt["conversation_id"]

    await post(service, message("return", message_id="wa-2"))
    clarify = (await bridge[0].wait_for_replies(2))[-1]
    assert {c["id"] for c in clarify["choices"]} >= {"return-how", "return-window"}
    await post(service, message("Return deadline", message_id="wa-3", choice="return-window"))
    assert "without giving a reason" in (await bridge[0].wait_for_replies(3))[-1]["text"]


async def test_the_bridge_gets_the_survey_as_choices_and_passes_the_rating_back(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    await service.add_agent("ana")
    _, receipt = await post(service, message("转人工"))
    cid = receipt["conversation_id"]
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "好的"})
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    survey = (await bridge[0].wait_for_replies(3))[-1]
    assert survey["kind"] == "survey" and "打分" in survey["text"]
    assert [c["id"] for c in survey["choices"]] == [f"csat:{n}" for n in range(1, 6)]
    _, rated = await post(service, message("满意", message_id="wa-9", choice="csat:4"))
    assert rated["conversation_id"] == cid
    assert (await bridge[0].wait_for_replies(4))[-1]["text"] == "感谢您的评价！"
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert detail["status"] == "resolved" and detail["satisfaction"]["score"] == 4


async def test_the_same_message_id_is_stored_and_answered_once(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    first = await post(service, message("How do I get an invoice?"))
    again = await post(service, message("How do I get an invoice?"))
    assert first[1]["duplicate"] is False and again[1]["duplicate"] is True
    assert again[1]["message_id"] == first[1]["message_id"]
    await post(service, message("How long is the warranty?", message_id="wa-9"))
    replies = await bridge[0].wait_for_replies(2)
    assert len(replies) == 2 and "warranty" in replies[1]["text"].lower()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "someone-elses-secret-key"}, "wrong X-RelayDesk-Signature"),
        ({"timestamp": int(time.time()) - 3600}, "away from now"),
        ({"timestamp": int(time.time()) + 3600}, "away from now"),
        ({"headers": {}}, "missing or malformed X-RelayDesk-Timestamp"),
    ],
)
async def test_unsigned_forged_or_replayed_requests_get_401(
    service: Service, kwargs: dict[str, Any], reason: str
) -> None:
    status, body = await post(service, message("How do I get an invoice?"), **kwargs)
    assert status == 401 and reason in body["error"]["message"]
    async with service.db.read() as repo:
        assert await repo.count_by_status() == {}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"message_id": "x", "text": "hi"}, "sender"),
        ({"message_id": "x", "sender": {"name": "Mei"}, "text": "hi"}, "sender.id"),
        ({"message_id": "x", "sender": {"id": "1"}, "text": ""}, "text"),
        ({"sender": {"id": "1"}, "text": "hi"}, "message_id"),
        ({**message("hi"), "colour": "red"}, "colour"),
        ({**message("hi"), "language": "fr"}, "language"),
    ],
)
async def test_schema_errors_name_the_field(
    service: Service, payload: dict[str, Any], field: str
) -> None:
    status, body = await post(service, payload)
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert body["error"]["message"].startswith(f"{field}:")


async def test_invalid_json_is_a_400(service: Service) -> None:
    status, body = await post(service, None, raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_body"


async def test_a_bridge_that_refuses_gets_the_reply_marked_dead(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    await service.add_agent("ana")
    bridge[0].statuses.append((400, {}))
    async with service.events.subscribe() as events:
        await post(service, message("How do I get an invoice?"))
        while not getattr(await events.get(), "dead", False):
            pass
    _, dead = await service.api("ana", "GET", "/api/agent/deliveries?status=dead")
    assert "bridge answered 400" in dead["deliveries"][0]["last_error"]
    assert bridge[0].attempts == 1


async def test_a_busy_bridge_is_retried_until_it_takes_the_reply(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    bridge[0].statuses.extend([(503, {}), (429, {"Retry-After": "1"})])
    await post(service, message("How do I get an invoice?"))
    [reply] = await bridge[0].wait_for_replies(1)
    assert "invoice" in reply["text"].lower() and bridge[0].attempts == 3


async def test_a_customer_known_by_email_is_one_contact_across_channels(
    service: Service, bridge: tuple[Bridge, str]
) -> None:
    earlier = await service.memory.inject(
        InboundMessage(
            external_id="mail-1",
            address=ChannelAddress("memory", "mei@example.cn"),
            sender=SenderIdentity(
                "memory", "mei@example.cn", display_name="Mei", email="Mei@Example.cn"
            ),
            text="talk to a person",
        )
    )
    payload = message("怎么申请退货？")
    payload["sender"]["email"] = "mei@example.cn"
    status, receipt = await post(service, payload)
    assert status == 200
    await bridge[0].wait_for_replies(1)
    await service.add_agent("ana")
    _, detail = await service.api(
        "ana", "GET", f"/api/agent/conversations/{receipt['conversation_id']}"
    )
    channels = {i["channel"] for i in detail["contact"]["identities"]}
    assert channels == {"memory", "whatsapp"}
    assert [c["id"] for c in detail["other_conversations"]] == [earlier.conversation_id]
    # Someone else on the same bridge without that address stays a separate contact.
    stranger = message("hello", message_id="wa-9")
    stranger["sender"] = {"id": "+8613900000000", "name": "Lin"}
    status, other = await post(service, stranger)
    _, detail = await service.api(
        "ana", "GET", f"/api/agent/conversations/{other['conversation_id']}"
    )
    assert detail["other_conversations"] == []


async def test_what_the_shop_says_of_the_sender_routes_the_handoff(tmp_path: Path) -> None:
    overrides = {
        "channels": {
            "api": {"whatsapp": {"secret": SECRET, "outbound_url": "http://127.0.0.1:9/"}}
        },
        "routing": {
            "teams": {"vip": {"members": ["ana"]}},
            "rules": [{"when": {"contact": {"vip": True}}, "then": {"team": "vip"}}],
        },
    }
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        vip = message("转人工", sender={"id": "+861", "attributes": {"vip": True, "tier": "gold"}})
        status, receipt = await post(service, vip)
        assert status == 200
        _, body = await service.api(
            "ana", "GET", f"/api/agent/conversations/{receipt['conversation_id']}"
        )
        assert body["team"] == "vip"
        status, receipt = await post(service, message("转人工", message_id="wa-2"))
        _, body = await service.api(
            "ana", "GET", f"/api/agent/conversations/{receipt['conversation_id']}"
        )
        assert body["team"] is None
        for attributes in [{"vip": None}, {"": 1}, {"x": "y" * 201}, {"n": [1]}]:
            bad = message("hi", message_id="wa-3", sender={"id": "+862", "attributes": attributes})
            status, answer = await post(service, bad)
            assert status == 400, attributes
            assert answer["error"]["message"].startswith("sender.attributes")
