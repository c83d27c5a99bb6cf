"""The web-chat channel over real websockets: reconnects, identity, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import WSMsgType

from channels.webchat import VisitorTokens
from router.keys import CHANNELS
from tests.support.service import Service, running_service
from tests.support.webchat import Visitor


async def test_a_reconnecting_client_gets_what_it_missed_once_in_order(
    sqlite_service: Service,
) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    visitor = Visitor(service.client)
    await visitor.connect()
    await visitor.ask("talk to a person")
    cid = (await service.api("ana", "GET", "/api/agent/conversations?status=queued"))[1][
        "conversations"
    ][0]["id"]
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    seen_before = visitor.last_seq
    await visitor.close()

    # Three replies while the visitor is away.
    async with service.delivered(3):
        for text in ("first", "second", "third"):
            await service.api(
                "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": text}
            )

    welcome = await visitor.connect()
    assert welcome["seq"] == seen_before + 3
    missed = [await visitor.reply() for _ in range(3)]
    assert [f["text"] for f in missed] == ["first", "second", "third"]
    assert [f["seq"] for f in missed] == [seen_before + 1, seen_before + 2, seen_before + 3]

    # Reconnecting again from the newest frame replays nothing; the next reply arrives once.
    await visitor.close()
    await visitor.connect()
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "4"})
    fourth = await visitor.reply()
    assert fourth["text"] == "4" and fourth["seq"] == seen_before + 4
    texts = [f["text"] for f in visitor.frames if f.get("type") == "message"]
    assert texts.count("first") == 1


async def test_a_reload_continues_the_conversation_with_its_history(
    sqlite_service: Service,
) -> None:
    first_tab = Visitor(sqlite_service.client)
    await first_tab.connect()
    await first_tab.ask("How do I get an invoice?")
    await first_tab.close()

    reloaded = Visitor(sqlite_service.client, token=first_tab.token)
    welcome = await reloaded.connect(resume=False)
    assert welcome["visitor"]["id"] == first_tab.visitor_id
    history = [await reloaded.wait_for(lambda f: f.get("type") == "message") for _ in range(2)]
    assert [f["author"] for f in history] == ["customer", "bot"]
    await reloaded.ask("How long is the warranty?")
    async with sqlite_service.db.read() as repo:
        conversations = await repo.contact_conversations(1)
    assert len(conversations) == 1


async def test_a_forged_or_expired_token_is_a_new_visitor(sqlite_service: Service) -> None:
    owner = Visitor(sqlite_service.client)
    await owner.connect()
    await owner.ask("How do I get an invoice?")
    assert owner.token is not None and owner.visitor_id is not None

    _, issued, signature = owner.token.split(".")[1:]
    forged_tokens = [
        f"v1.{owner.visitor_id}.{issued}.{'A' * len(signature)}",
        f"v1.{owner.visitor_id}.{int(issued) + 1}.{signature}",
        owner.visitor_id,
        "",
        VisitorTokens(secret=b"someone-elses-secret-key", ttl_seconds=60).issue(
            owner.visitor_id, now=float(issued)
        ),
        VisitorTokens(
            secret=sqlite_service.config.server.secret_key.encode(), ttl_seconds=60
        ).issue(owner.visitor_id, now=float(issued) - 40 * 86400),
    ]
    for token in forged_tokens:
        intruder = Visitor(sqlite_service.client, token=token)
        welcome = await intruder.connect(resume=False)
        assert welcome["visitor"]["id"] != owner.visitor_id, token
        assert welcome["seq"] == 0
        await intruder.close()


async def test_bad_frames_get_an_error_and_the_connection_stays_up(tmp_path: Path) -> None:
    overrides = {
        "channels": {"webchat": {"max_text_chars": 50, "rate_limit": {"burst": 2, "per_minute": 1}}}
    }
    async with running_service(tmp_path, overrides=overrides) as service:
        visitor = Visitor(service.client)
        await visitor.connect()
        accepted = await visitor.send("How do I get an invoice?")

        async def error_for(raw: str) -> dict[str, object]:
            await visitor.send_raw(raw)
            return await visitor.wait_for(lambda f: f.get("type") == "error")

        assert (await error_for("{not json"))["code"] == "invalid_json"
        assert (await error_for("[1, 2]"))["code"] == "invalid_frame"
        assert (await error_for(json.dumps({"type": "shout", "client_id": "x"})))[
            "code"
        ] == "unknown_type"
        assert (await error_for(json.dumps({"type": "message", "client_id": "x"})))[
            "code"
        ] == "invalid_frame"
        too_long = await error_for(
            json.dumps({"type": "message", "client_id": "long", "text": "x" * 51})
        )
        assert too_long["code"] == "too_long" and "50" in str(too_long["message"])

        await visitor.send("How long is the warranty?")
        await visitor.send("When will my order ship?")
        limited = await visitor.wait_for(lambda f: f.get("type") == "error")
        assert limited["code"] == "rate_limited"

        # Still connected, and everything accepted before was stored and answered.
        assert visitor.ws is not None and not visitor.ws.closed
        acks = [f for f in visitor.frames if f.get("type") == "ack"]
        answers = [f for f in visitor.frames if f.get("type") == "message" and f["author"] == "bot"]
        while len(answers) < 2:
            answers.append(await visitor.reply())
        assert accepted in {a["client_id"] for a in acks}
        async with service.db.read() as repo:
            messages = await repo.messages(1)
        customer = [m.text for m in messages if m.author_kind == "customer"]
        assert customer == ["How do I get an invoice?", "How long is the warranty?"]


async def test_a_resent_client_message_is_stored_and_answered_once(
    sqlite_service: Service,
) -> None:
    visitor = Visitor(sqlite_service.client)
    await visitor.connect()
    client_id = await visitor.send("How do I get an invoice?")
    first_ack = await visitor.wait_for(lambda f: f.get("type") == "ack")
    await visitor.reply()
    # The page lost its connection before it saw the ack and sends again, same id.
    await visitor.send("How do I get an invoice?", client_id=client_id)
    second_ack = await visitor.wait_for(lambda f: f.get("type") == "ack")
    assert not first_ack["duplicate"] and second_ack["duplicate"]
    await visitor.ask("How long is the warranty?")
    bot_frames = [f for f in visitor.frames if f.get("type") == "message" and f["author"] == "bot"]
    assert len(bot_frames) == 2


async def test_no_hello_no_chat(sqlite_service: Service) -> None:
    ws = await sqlite_service.client.ws_connect("/api/chat/ws")
    await ws.send_str(json.dumps({"type": "message", "client_id": "x", "text": "hi"}))
    closing = await ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 4000


async def test_chat_page_and_widget_are_served(sqlite_service: Service) -> None:
    client = sqlite_service.client
    page = await client.get("/chat")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert '<script src="/chat/chat.js">' in await page.text()
    widget = await client.get("/widget.js")
    assert widget.status == 200 and "javascript" in widget.headers["Content-Type"]
    assert "/chat?embed=1" in await widget.text()
    assert (await client.get("/chat/chat.js")).status == 200
    assert (await client.get("/chat/../config.yaml")).status == 404


async def test_a_reply_to_a_visitor_who_is_away_is_stored_not_kept_in_memory(
    sqlite_service: Service,
) -> None:
    from channels.base import ChannelAddress, OutboundKind, OutboundMessage
    from channels.webchat import WebChatChannel

    channel = sqlite_service.app[CHANNELS]["webchat"]
    assert isinstance(channel, WebChatChannel)
    away = "ab" * 16
    for n in range(50):
        await channel.send(
            OutboundMessage(
                address=ChannelAddress(channel="webchat", recipient_id=away),
                conversation_id=1,
                text=f"reply {n}",
                kind=OutboundKind.AGENT,
                idempotency_key=f"msg-{n}",
            )
        )
    # This process keeps nothing for a visitor without an open tab...
    assert channel.visitors_held == 0
    # ...and the database has all of it, for whichever node they come back to.
    async with sqlite_service.db.read() as repo:
        frames = await repo.frames_after(away, 0, 1000)
    assert [f["seq"] for f in frames] == list(range(1, 51))
