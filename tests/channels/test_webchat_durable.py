"""What a web-chat visitor was shown survives restarts, is numbered once, and nobody
floods the queue or claims another shopper's history (issue 14, items 7-9, 11, 12)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from channels.base import ChannelAddress, OutboundKind, OutboundMessage
from channels.webchat import WebChatChannel, WebChatSettings
from router.builders import utc_now
from router.delivery.visitor_stream import StoredVisitorStream
from router.storage import Database
from tests.support.service import Service, running_service
from tests.support.webchat import Visitor

SECRET = "a-fixed-server-secret-0123456789"
IDENTITY_SECRET = "shop-identity-secret-0123"


def _fixed(**webchat: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {"server": {"secret_key": SECRET}}
    if webchat:
        overrides["channels"] = {"webchat": webchat}
    return overrides


async def test_a_reply_sent_while_the_visitor_was_away_survives_a_restart(tmp_path: Path) -> None:
    async with running_service(tmp_path, overrides=_fixed()) as service:
        await service.add_agent("ana")
        visitor = Visitor(service.client)
        await visitor.connect()
        ack = await visitor.tell("talk to a person")
        await visitor.reply()  # the handoff notice
        conversation = ack["conversation"]
        await service.api("ana", "POST", f"/api/agent/conversations/{conversation}/claim")
        await visitor.close()
        async with service.delivered(1):
            await service.api(
                "ana",
                "POST",
                f"/api/agent/conversations/{conversation}/reply",
                {"text": "Your replacement ships today."},
            )
        token, last_seq, epoch = visitor.token, visitor.last_seq, visitor.epoch

    # A new process on the same database (SIGTERM, a deploy, a crash: the same).
    async with running_service(tmp_path, overrides=_fixed()) as restarted:
        back = Visitor(restarted.client, token=token)
        back.last_seq, back.epoch = last_seq, epoch
        await back.connect()
        reply = await back.reply()
        assert reply["text"] == "Your replacement ships today." and reply["seq"] == last_seq + 1

        # A reload (nothing remembered but the token) shows the whole conversation.
        reload = Visitor(restarted.client, token=token)
        await reload.connect()
        shown = [await reload.wait_for(lambda f: f.get("type") == "message") for _ in range(3)]
        assert [f["author"] for f in shown] == ["customer", "system", "agent"]
        assert [f["seq"] for f in shown] == [1, 2, 3]


async def test_a_redelivered_reply_keeps_its_number_and_is_shown_once(
    database: Database,
) -> None:
    settings, secret = WebChatSettings(), b"0123456789abcdef0123"
    stream = StoredVisitorStream(db=database, clock=utc_now)
    before_crash = WebChatChannel(settings=settings, secret=secret, stream=stream)
    reply = OutboundMessage(
        address=ChannelAddress("webchat", "cd" * 16),
        conversation_id=1,
        text="Here is your label.",
        kind=OutboundKind.AGENT,
        idempotency_key="msg-9",
    )
    await before_crash.send(reply)
    # The process died before it recorded the delivery; after the lease another
    # process (or the same one, restarted) delivers the same outbox row again.
    after_crash = WebChatChannel(settings=settings, secret=secret, stream=stream)
    await after_crash.send(reply)
    await after_crash.send(
        OutboundMessage(
            address=reply.address,
            conversation_id=1,
            text="Anything else?",
            kind=OutboundKind.AGENT,
            idempotency_key="msg-10",
        )
    )
    frames = await stream.after("cd" * 16, 0, 100)
    assert [(f["seq"], f["id"]) for f in frames] == [(1, "msg-9"), (2, "msg-10")]


async def test_fresh_sockets_from_one_address_cannot_flood_the_queue(tmp_path: Path) -> None:
    overrides = _fixed(new_visitors_per_minute=5, address_messages_per_minute=100_000)
    async with running_service(tmp_path, overrides=overrides) as service:
        admitted = refused = 0
        for _ in range(12):
            ws = await service.client.ws_connect("/api/chat/ws")
            await ws.send_json({"type": "hello"})
            first = await ws.receive_json(timeout=5)
            if first["type"] == "welcome":
                admitted += 1
            else:
                assert first["code"] == "rate_limited"
                closing = await ws.receive(timeout=5)
                assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
                refused += 1
            await ws.close()
        assert (admitted, refused) == (5, 7)
        async with service.db.read() as repo:
            assert sum((await repo.count_by_status()).values()) == 0


async def test_messages_are_limited_per_address_across_its_visitors(tmp_path: Path) -> None:
    overrides = _fixed(new_visitors_per_minute=100, address_messages_per_minute=8)
    async with running_service(tmp_path, overrides=overrides) as service:
        codes = []
        for n in range(4):
            visitor = Visitor(service.client)
            await visitor.connect()
            for m in range(3):
                await visitor.send(f"hello {n}.{m}")
                frame = await visitor.wait_for(lambda f: f.get("type") in ("ack", "error"))
                codes.append(frame.get("code", "ack"))
            await visitor.close()
        # One visitor alone is allowed 3 in a row; the address as a whole, not 12.
        assert "rate_limited" in codes and codes.count("ack") < 12


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    overrides = _fixed(new_visitors_per_minute=2)
    overrides["server"]["trusted_proxies"] = ["127.0.0.1"]

    async def hello(service: Service, forwarded: str) -> str:
        ws = await service.client.ws_connect("/api/chat/ws", headers={"X-Forwarded-For": forwarded})
        await ws.send_json({"type": "hello"})
        kind = (await ws.receive_json(timeout=5))["type"]
        await ws.close()
        return str(kind)

    async with running_service(tmp_path / "trusted", overrides=overrides) as behind_proxy:
        kinds = [await hello(behind_proxy, f"198.51.100.{n}") for n in range(6)]
        assert kinds == ["welcome"] * 6  # six different clients behind the proxy
        # A client cannot hide behind an address it writes itself: the proxy's last hop
        # is what counts.
        spoofed = [await hello(behind_proxy, f"10.9.9.{n}, 203.0.113.7") for n in range(3)]
        assert spoofed == ["welcome", "welcome", "error"]

    del overrides["server"]["trusted_proxies"]
    async with running_service(tmp_path / "direct", overrides=overrides) as direct:
        kinds = [await hello(direct, f"198.51.100.{n}") for n in range(3)]
        assert kinds == ["welcome", "welcome", "error"]  # the header is ignored


def _signed(user_id: str, email: str = "") -> dict[str, str]:
    digest = hmac.new(IDENTITY_SECRET.encode(), f"{user_id}:{email}".encode(), hashlib.sha256)
    return {"id": user_id, "email": email, "name": "Li Wei", "hash": digest.hexdigest()}


@pytest.fixture
async def shop(tmp_path: Path) -> Any:
    async with running_service(
        tmp_path, overrides=_fixed(identity_secret=IDENTITY_SECRET)
    ) as service:
        yield service


async def _visit(
    service: Service, identity: dict[str, str] | None
) -> tuple[Visitor, dict[str, Any]]:
    visitor = Visitor(service.client)
    assert visitor.ws is None
    visitor.ws = await service.client.ws_connect("/api/chat/ws")
    await visitor.ws.send_json({"type": "hello", "identity": identity})
    welcome = await visitor.ws.receive_json(timeout=5)
    visitor.token = welcome["visitor"]["token"]
    return visitor, welcome


async def test_a_verified_shopper_has_one_history_on_every_device(shop: Service) -> None:
    phone, welcome = await _visit(shop, _signed("u-42", "li@example.com"))
    assert welcome["visitor"]["verified"]
    await phone.ask("How do I get an invoice?")
    laptop, again = await _visit(shop, _signed("u-42", "li@example.com"))
    assert again["visitor"]["id"] == welcome["visitor"]["id"]
    replayed = await laptop.wait_for(lambda f: f.get("type") == "message")
    assert replayed["text"] == "How do I get an invoice?"
    async with shop.db.read() as repo:
        contact_id = await repo.contact_for_identity("webchat", welcome["visitor"]["id"])
        assert contact_id is not None
        contact = await repo.contact(contact_id)
    assert contact is not None and contact.email == "li@example.com"


async def test_an_unverified_identity_can_never_claim_a_shoppers_history(shop: Service) -> None:
    _, real = await _visit(shop, _signed("u-42", "li@example.com"))
    forged = dict(_signed("u-42", "li@example.com"), hash="0" * 64)
    _, welcome = await _visit(shop, forged)
    assert not welcome["visitor"]["verified"]
    assert welcome["visitor"]["id"] != real["visitor"]["id"]
    # Nor can a shopper sign themselves a different email with their own hash.
    other = dict(_signed("u-42", "li@example.com"), email="boss@example.com")
    _, welcome = await _visit(shop, other)
    assert welcome["visitor"]["id"] != real["visitor"]["id"]


async def test_without_an_identity_secret_identities_are_ignored(tmp_path: Path) -> None:
    async with running_service(tmp_path, overrides=_fixed()) as service:
        _, first = await _visit(service, _signed("u-42"))
        _, second = await _visit(service, _signed("u-42"))
    assert first["visitor"]["id"] != second["visitor"]["id"]
    assert not first["visitor"]["verified"]


async def test_frames_stored_at_once_by_several_writers_get_distinct_numbers(
    database: Database,
) -> None:
    stream = StoredVisitorStream(db=database, clock=utc_now)
    visitor = "ef" * 16
    results = await asyncio.gather(
        *(stream.append(visitor, f"msg-{n}", {"text": str(n)}) for n in range(20)),
        stream.append(visitor, "msg-3", {"text": "again"}),
    )
    numbers = sorted(seq for seq, new in results if new)
    assert numbers == list(range(1, 21))
    frames = await stream.after(visitor, 0, 100)
    assert [f["seq"] for f in frames] == list(range(1, 21))
    assert sum(1 for f in frames if f["text"] == "again") == 0
