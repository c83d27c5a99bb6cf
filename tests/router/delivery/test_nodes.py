"""Several `relaydesk serve` processes on one PostgreSQL: what one node stores, a visitor
or an agent connected to another node sees, live (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from router.builders import utc_now
from router.inbox import Accounts, hash_token
from router.storage import Database
from tests.support.inbox import PASSWORD
from tests.support.load import (
    BRIDGE,
    LoadSettings,
    Node,
    node_config,
    signed,
)
from tests.support.service import make_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "nodes-share-this-secret-0123456789"


@asynccontextmanager
async def node(
    folder: Path, url: str, overrides: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """One `relaydesk serve` on ``url``; yields its base URL."""
    make_config(
        folder,
        {
            "storage": {"url": url, "auto_upgrade": True},
            "server": {"secret_key": SECRET},
            **(overrides or {}),
        },
    )
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "router.cli", "--config", str(folder / "config.yaml")),
        *("serve", "--port", "0"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await process.stderr.readline()).decode()
                assert line, "relaydesk serve exited before listening"
                if match := re.search(r"listening on (http://\S+)", line):
                    break

        async def keep_reading() -> None:  # a full pipe would stop the process
            assert process.stderr is not None
            while await process.stderr.readline():
                pass

        drain = asyncio.create_task(keep_reading())
        yield match.group(1)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()


async def agent_token(url: str, name: str) -> str:
    token = secrets.token_urlsafe(24)
    db = Database(url)
    async with db.write() as repo:
        await repo.add_agent(name=name, token_hash=hash_token(token), now=utc_now())
    await db.dispose()
    return token


async def next_frame(ws: aiohttp.ClientWebSocketResponse, **wanted: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=15)
        if all(frame.get(k) == v for k, v in wanted.items()):
            return dict(frame)


async def test_a_reply_from_another_node_reaches_the_visitor_and_queues_are_shared(
    shared_database: str, tmp_path: Path
) -> None:
    async with (
        node(tmp_path / "a", shared_database) as a,
        node(tmp_path / "b", shared_database) as b,
    ):
        token = await agent_token(shared_database, "ana")
        headers = {"Authorization": f"Bearer {token}"}
        # Ana watches from node B; the customer chats on node A.
        async with aiohttp.ClientSession() as http:  # noqa: SIM117 (one session, two sockets)
            async with http.ws_connect(f"{b}/api/agent/events", headers=headers) as feed:
                async with http.ws_connect(f"{a}/api/chat/ws") as visitor:
                    await visitor.send_json({"type": "hello", "token": None})
                    welcome = await next_frame(visitor, type="welcome")
                    await visitor.send_json(
                        {"type": "message", "client_id": "q1", "text": "talk to a person"}
                    )
                    notice = await next_frame(visitor, type="message", author="system")
                    changed = await next_frame(feed, type="conversation_changed", status="queued")
                    cid = changed["conversation_id"]
                    assert f"#{cid}" in notice["text"]

                    async with http.post(
                        f"{b}/api/agent/conversations/{cid}/claim", headers=headers
                    ) as claimed:
                        assert claimed.status == 200
                    async with http.post(
                        f"{b}/api/agent/conversations/{cid}/reply",
                        headers=headers,
                        json={"text": "Hello from node B"},
                    ) as replied:
                        assert replied.status == 202
                    reply = await next_frame(visitor, type="message", author="agent")
                    assert reply["text"] == "Hello from node B"
                    # The next thing this visitor is shown: nothing stored for them between.
                    assert reply["seq"] == notice["seq"] + 1
                    last_seq = reply["seq"]

                # The visitor's tab comes back on node B and misses nothing, twice nothing.
                async with http.ws_connect(f"{b}/api/chat/ws") as moved:
                    await moved.send_json(
                        {
                            "type": "hello",
                            "token": welcome["visitor"]["token"],
                            "last_seq": last_seq,
                            "epoch": welcome["epoch"],
                        }
                    )
                    again = await next_frame(moved, type="welcome")
                    assert again["visitor"]["id"] == welcome["visitor"]["id"]
                    assert again["seq"] == last_seq  # nothing to replay
                    # Now the reply is sent from node A, where the visitor no longer is.
                    async with http.post(
                        f"{a}/api/agent/conversations/{cid}/reply",
                        headers=headers,
                        json={"text": "And from node A"},
                    ) as replied:
                        assert replied.status == 202
                    later = await next_frame(moved, type="message", author="agent")
                    assert later["text"] == "And from node A" and later["seq"] == last_seq + 1


async def test_a_node_killed_while_sending_leaves_its_reply_to_another_after_the_lease(
    shared_database: str, tmp_path: Path
) -> None:
    """Node A claims a reply and hangs in the middle of sending it; kill -9. Node B sends
    it once A's lease has run out, with the same idempotency key."""
    settings = LoadSettings(folder=tmp_path, database=shared_database)
    first_attempt, delivered, released = asyncio.Event(), asyncio.Event(), asyncio.Event()
    claimed_at = 0.0
    deliveries: list[tuple[str, float]] = []

    async def receive(request: web.Request) -> web.Response:
        nonlocal claimed_at
        reply = json.loads(await request.read())
        if not first_attempt.is_set():
            claimed_at = time.monotonic()
            first_attempt.set()
            await released.wait()  # node A's attempt: never answered
            return web.json_response({"ok": False}, status=503)
        deliveries.append((reply["idempotency_key"], time.monotonic()))
        delivered.set()
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/replies", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    outbound = f"http://127.0.0.1:{port}/replies"
    a = Node(tmp_path / "a", node_config(settings, tmp_path / "a", outbound))
    b = Node(tmp_path / "b", node_config(settings, tmp_path / "b", outbound))
    try:
        await a.start()
        body = json.dumps(
            {"message_id": "m1", "sender": {"id": "+86138"}, "text": "How long is the warranty?"}
        ).encode()
        async with aiohttp.ClientSession() as http:
            headers = signed(settings.bridge_secret, body)
            url = f"http://127.0.0.1:{a.port}/api/channels/{BRIDGE}/messages"
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 200
        async with asyncio.timeout(15):
            await first_attempt.wait()  # A holds the reply, mid-send
        await b.start()
        await a.kill()
        async with asyncio.timeout(30):
            await delivered.wait()
        key, when = deliveries[0]
        # B waited for A's lease (3 s from A's claim) to run out.
        assert when - claimed_at >= 2.9
        engine = create_async_engine(shared_database)
        for _ in range(100):  # B records the delivery just after the receiver answered
            async with engine.connect() as connection:
                rows = (
                    await connection.execute(text("SELECT idempotency_key, status FROM outbox"))
                ).all()
            if rows and rows[0][1] != "pending":
                break
            await asyncio.sleep(0.05)
        await engine.dispose()
        # Sent, and a sent row is never claimed again: it went out once.
        assert [(k, s) for k, s in rows] == [(key, "sent")]
        assert [k for k, _ in deliveries] == [key]
    finally:
        released.set()
        await asyncio.gather(a.stop(), b.stop())
        await runner.cleanup()


async def inbox_agent(url: str, base: str, name: str) -> aiohttp.ClientSession:
    """An agent with a password, signed in to the inbox at ``base``: its HTTP session."""
    db = Database(url)
    await Accounts(db=db, clock=utc_now).create(name, PASSWORD)
    await db.dispose()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(
        f"{base}/inbox/login", data={"name": name, "password": PASSWORD}, allow_redirects=False
    ) as response:
        assert response.status == 303
    return http


async def handed_off(base: str, http: aiohttp.ClientSession, customer: str) -> None:
    """A web-chat customer at ``base`` asks for a person (and is told they are queued)."""
    async with http.ws_connect(f"{base}/api/chat/ws") as visitor:
        await visitor.send_json({"type": "hello", "token": None})
        await next_frame(visitor, type="welcome")
        await visitor.send_json(
            {"type": "message", "client_id": customer, "text": "talk to a person"}
        )
        await next_frame(visitor, type="message", author="system")


async def test_agents_on_different_nodes_see_each_other_view_and_type(
    shared_database: str, tmp_path: Path
) -> None:
    async with (
        node(tmp_path / "a", shared_database) as a,
        node(tmp_path / "b", shared_database) as b,
    ):
        ana = await inbox_agent(shared_database, a, "Ana")
        bo = await inbox_agent(shared_database, b, "Bo")
        async with aiohttp.ClientSession() as http:
            await handed_off(a, http, "c1")
        db = Database(shared_database)
        async with db.read() as repo:
            (cid,) = (await repo.session.execute(text("SELECT id FROM conversations"))).one()
        await db.dispose()
        try:
            async with (
                ana.ws_connect(f"{a}/inbox/ws") as ana_live,
                bo.ws_connect(f"{b}/inbox/ws") as bo_live,
            ):
                await ana_live.send_json({"type": "viewing", "conversation_id": cid})
                assert (await next_frame(ana_live, type="presence"))["viewing"] == ["Ana"]
                # Bo opens the same conversation on node B: Ana, on node A, sees him...
                await bo_live.send_json({"type": "viewing", "conversation_id": cid})
                seen = await next_frame(ana_live, type="presence", viewing=["Ana", "Bo"])
                assert seen["typing"] == []
                # ...and sees him typing, and stop.
                await bo_live.send_json({"type": "typing"})
                await next_frame(ana_live, type="presence", typing=["Bo"])
                await next_frame(ana_live, type="presence", typing=[], viewing=["Ana", "Bo"])
                # Bo closes his inbox: he is gone from Ana's screen.
                await bo_live.close()
                await next_frame(ana_live, type="presence", viewing=["Ana"])
        finally:
            await ana.close()
            await bo.close()


async def test_one_assigner_at_a_time_gives_an_agent_on_another_node_only_her_capacity(
    shared_database: str, tmp_path: Path
) -> None:
    assigning = {"inbox": {"auto_assign": True, "capacity": 1}}
    async with (
        node(tmp_path / "a", shared_database, assigning) as a,
        node(tmp_path / "b", shared_database, assigning) as b,
    ):
        ana = await inbox_agent(shared_database, a, "Ana")
        try:
            async with ana.ws_connect(f"{a}/inbox/ws") as ana_live:
                # Ana is online on node A only; customers ask for people on both nodes at
                # once, so both nodes' assigners run.
                async with aiohttp.ClientSession() as http:
                    await asyncio.gather(
                        *(handed_off(a if n % 2 else b, http, f"c{n}") for n in range(4))
                    )
                frame = await next_frame(ana_live, type="conversation_changed", status="assigned")
                db = Database(shared_database)
                try:
                    # Every queued conversation's change has been seen by now or is not
                    # coming: wait until all four are queued or assigned, then count.
                    for _ in range(200):
                        async with db.read() as repo:
                            rows = (
                                await repo.session.execute(
                                    text("SELECT status, assignee_id FROM conversations")
                                )
                            ).all()
                        if len(rows) == 4 and all(s in ("queued", "assigned") for s, _ in rows):
                            break
                        await asyncio.sleep(0.05)
                    async with db.read() as repo:
                        rows = (
                            await repo.session.execute(
                                text("SELECT status, assignee_id FROM conversations")
                            )
                        ).all()
                finally:
                    await db.dispose()
                assigned = [r for r in rows if r[0] == "assigned"]
                assert len(assigned) == 1 and assigned[0][1] is not None
                assert frame["conversation_id"] is not None
                assert sorted(s for s, _ in rows) == ["assigned", "queued", "queued", "queued"]
        finally:
            await ana.close()


async def test_a_visitor_s_rate_limit_counts_the_messages_sent_to_every_node(
    shared_database: str, tmp_path: Path
) -> None:
    strict = {"channels": {"webchat": {"rate_limit": {"burst": 2, "per_minute": 1}}}}
    async with (
        node(tmp_path / "a", shared_database, strict) as a,
        node(tmp_path / "b", shared_database, strict) as b,
        aiohttp.ClientSession() as http,
    ):
        async with http.ws_connect(f"{a}/api/chat/ws") as first:
            await first.send_json({"type": "hello", "token": None})
            welcome = await next_frame(first, type="welcome")
            for n in range(2):
                await first.send_json({"type": "message", "client_id": f"m{n}", "text": "hi"})
                await next_frame(first, type="ack", client_id=f"m{n}")
        # The same visitor on node B has no fresh allowance there.
        async with http.ws_connect(f"{b}/api/chat/ws") as second:
            await second.send_json(
                {"type": "hello", "token": welcome["visitor"]["token"], "epoch": welcome["epoch"]}
            )
            await next_frame(second, type="welcome")
            await second.send_json({"type": "message", "client_id": "m2", "text": "hi again"})
            refused = await next_frame(second, type="error")
            assert refused["code"] == "rate_limited" and refused["client_id"] == "m2"
