"""Inbox benchmark: page render times with a big store, and live fan-out to agents.

    .venv/bin/python bench/inbox_bench.py [--pg postgresql+asyncpg://…] [--requests 100]

The service runs in its own process on a store holding 10,000 open conversations
and 200,000 messages (SQLite, and PostgreSQL with --pg). Measured from a client
process, in the same run:

* the queue page (``/inbox?tab=open``: 200 rows, four tab counts) and a random
  conversation page: p50/p95 per request, against a bare aiohttp handler that
  returns the same number of bytes;
* fan-out: 50 agents connected to ``/inbox/ws``; a customer writes in the web
  chat; the delay until each agent's socket has the event (p50/p95), against a
  bare aiohttp server broadcasting one frame to 50 websockets.

Details go to bench/results/inbox.json and inbox.md; the last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONVERSATIONS = 10_000
MESSAGES_PER = 20
AGENTS = 50
PASSWORD = "bench password 123"


# -- the service (its own process) --------------------------------------------------


async def _populate(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert, select, text

    from router.storage import Database
    from router.storage.models import (
        ContactRow,
        ConversationRow,
        IdentityRow,
        MessageRow,
    )

    db = Database(url)
    await db.upgrade()
    async with db.read() as repo:
        if await repo.session.scalar(select(ConversationRow.id).limit(1)) is not None:
            await db.dispose()
            return
    now = datetime.now(UTC)
    rng = random.Random(7)
    words = [
        "退款",
        "发票",
        "快递",
        "保修",
        "安装",
        "return",
        "refund",
        "invoice",
        "delivery",
        "warranty",
        "broken",
        "late",
    ]
    # No explicit ids (PostgreSQL's sequences would not know them): a fresh store
    # numbers contacts and conversations 1…N in insertion order.
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(ContactRow),
            [
                {
                    "display_name": f"客户 {i}",
                    "email": f"c{i}@example.org",
                    "created_at": now,
                }
                for i in range(1, CONVERSATIONS + 1)
            ],
        )
        await connection.execute(
            insert(IdentityRow),
            [
                {"contact_id": i, "channel": "webchat", "external_id": f"v{i}", "created_at": now}
                for i in range(1, CONVERSATIONS + 1)
            ],
        )
        conversations = []
        for i in range(1, CONVERSATIONS + 1):
            start = now - timedelta(minutes=rng.randint(0, 600))
            conversations.append(
                {
                    "contact_id": i,
                    "channel": "webchat",
                    "thread_key": f"v{i}",
                    "reply_channel": "webchat",
                    "reply_recipient": f"v{i}",
                    "status": "queued" if i % 3 else "assigned",
                    "priority": rng.randint(0, 3),
                    "language": "zh" if i % 2 else "en",
                    "bot_misses": 0,
                    "sla_due_at": start + timedelta(minutes=60),
                    "handed_off_at": start,
                    "created_at": start,
                    "updated_at": start,
                }
            )
        await connection.execute(insert(ConversationRow), conversations)
        batch = []
        for i in range(1, CONVERSATIONS + 1):
            for n in range(MESSAGES_PER):
                batch.append(
                    {
                        "conversation_id": i,
                        "direction": "in" if n % 2 == 0 else "out",
                        "author_kind": "customer" if n % 2 == 0 else "bot",
                        "text": " ".join(rng.choices(words, k=12)),
                        "channel": "webchat",
                        "created_at": now - timedelta(minutes=MESSAGES_PER - n),
                    }
                )
            if len(batch) >= 20_000:
                await connection.execute(insert(MessageRow), batch)
                batch = []
        if batch:
            await connection.execute(insert(MessageRow), batch)
    # Planner statistics, as autovacuum (PostgreSQL) would gather after a bulk load.
    async with db.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    await db.dispose()


async def _serve_router(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    import yaml
    from aiohttp import web

    from router.app import create_app
    from router.config import load_config
    from router.inbox.keys import ACCOUNTS

    await _populate(url)
    workdir = Path(tempfile.mkdtemp(prefix="relaydesk-inbox-bench-"))
    raw = {
        "server": {"data_dir": str(workdir), "secret_key": "bench-secret-key-0123456789"},
        "storage": {"url": url, "auto_upgrade": True},
        "knowledge": {"path": str(ROOT / "knowledge" / "demo")},
        "channels": {
            "webchat": {
                "rate_limit": {"burst": 1000, "per_minute": 100000},
                "new_visitors_per_minute": 1_000_000,
                "address_messages_per_minute": 10_000_000,
            }
        },
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    app = create_app(load_config(workdir / "config.yaml"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    with contextlib.suppress(ValueError):  # a PostgreSQL store from an earlier run
        await app[ACCOUNTS].create("bench", PASSWORD, role="admin")
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def _serve_bare(size: int) -> None:
    from aiohttp import WSMsgType, web

    body = b"x" * size
    sockets: set[web.WebSocketResponse] = set()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    async def live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                for other in list(sockets):
                    await other.send_str(message.data)
        sockets.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/live", live)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


# -- the client ---------------------------------------------------------------------


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "n": len(samples),
        "p50_ms": statistics.median(samples) * 1000,
        "p95_ms": samples[int(len(samples) * 0.95) - 1] * 1000,
    }


async def _timed_gets(session: Any, paths: list[str]) -> tuple[dict[str, float], int]:
    samples = []
    size = 0
    for path in paths:
        started = time.perf_counter()
        async with session.get(path) as response:
            body = await response.read()
            assert response.status == 200, (path, response.status)
        samples.append(time.perf_counter() - started)
        size = len(body)
    return _stats(samples), size


async def _first_event(ws: Any, started: float) -> float:
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame.get("type") == "message_added":
            return time.perf_counter() - started


async def _arrival(ws: Any, started: float) -> float:
    await ws.receive_str(timeout=10)
    return time.perf_counter() - started


async def measure_router(port: int, requests: int, rounds: int) -> dict[str, Any]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as session:
        async with session.post(
            "/inbox/login", data={"name": "bench", "password": PASSWORD}, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        await _timed_gets(session, ["/inbox?tab=open"] * 5)  # warm up
        results["queue"], results["queue_bytes"] = await _timed_gets(
            session, ["/inbox?tab=open"] * requests
        )
        ids = [random.randint(1, CONVERSATIONS) for _ in range(requests)]
        results["conversation"], results["conversation_bytes"] = await _timed_gets(
            session, [f"/inbox/c/{i}" for i in ids]
        )
        agents = [await session.ws_connect("/inbox/ws") for _ in range(AGENTS)]
        async with session.ws_connect("/api/chat/ws") as visitor:
            await visitor.send_json({"type": "hello"})
            welcome = await visitor.receive_json()
            assert welcome["type"] == "welcome", welcome
            delays: list[float] = []
            for n in range(rounds):
                started = time.perf_counter()
                await visitor.send_json(
                    {"type": "message", "client_id": f"b{n}", "text": "talk to a person"}
                )

                delays += await asyncio.gather(*(_first_event(ws, started) for ws in agents))
                # Let the rest of this round's events pass before the next one.
                for ws in agents:
                    while True:
                        try:
                            await ws.receive_json(timeout=0.2)
                        except TimeoutError:
                            break
        for ws in agents:
            await ws.close()
    results["fanout"] = _stats(delays)
    return results


async def measure_bare(port: int, requests: int, rounds: int) -> dict[str, Any]:
    import aiohttp

    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        await _timed_gets(session, ["/page"] * 5)
        results["page"], _ = await _timed_gets(session, ["/page"] * requests)
        agents = [await session.ws_connect("/live") for _ in range(AGENTS)]
        sender = await session.ws_connect("/live")
        delays: list[float] = []
        for n in range(rounds):
            started = time.perf_counter()
            await sender.send_str(json.dumps({"type": "message_added", "n": n}))

            delays += await asyncio.gather(*(_arrival(ws, started) for ws in agents))
            await sender.receive_str(timeout=10)  # its own copy
        for ws in [*agents, sender]:
            await ws.close()
    results["fanout"] = _stats(delays)
    return results


# -- the orchestrator ---------------------------------------------------------------


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise RuntimeError(f"{args} did not start")
    return process, int(port)


def orchestrate(args: argparse.Namespace) -> None:
    backends = {"sqlite": f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/inbox-bench.db"}
    if args.pg:
        backends["postgresql"] = args.pg
    results: dict[str, Any] = {
        "conversations": CONVERSATIONS,
        "messages": CONVERSATIONS * MESSAGES_PER,
        "agents": AGENTS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    page_size = 0
    for name, url in backends.items():
        started = time.perf_counter()
        process, port = _spawn("--serve", "router", "--db", url)
        ready = time.perf_counter() - started
        try:
            results[name] = asyncio.run(measure_router(port, args.requests, args.rounds))
            results[name]["start_and_fill_seconds"] = ready
            page_size = max(page_size, results[name]["queue_bytes"])
        finally:
            process.terminate()
            process.wait(timeout=30)
    process, port = _spawn("--serve", "bare", "--size", str(page_size))
    try:
        results["bare"] = asyncio.run(measure_bare(port, args.requests, args.rounds))
    finally:
        process.terminate()
        process.wait(timeout=30)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inbox.json").write_text(json.dumps(results, indent=2) + "\n")
    bare = results["bare"]
    lines = [
        "# Inbox benchmark",
        "",
        f"`bench/inbox_bench.py --requests {args.requests} --rounds {args.rounds}`"
        f"{' --pg …' if args.pg else ''}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {CONVERSATIONS:,} open conversations, "
        f"{CONVERSATIONS * MESSAGES_PER:,} messages, {AGENTS} agent websockets.",
        "",
        "| measure (p50 / p95 ms) | " + " | ".join(backends) + " | bare aiohttp | target |",
        "|---|" + "---|" * len(backends) + "---|---|",
    ]
    for key, label in (("queue", "queue page (200 rows)"), ("conversation", "conversation page")):
        cells = [
            f"{results[b][key]['p50_ms']:.1f} / {results[b][key]['p95_ms']:.1f}" for b in backends
        ]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {bare['page']['p50_ms']:.1f} / {bare['page']['p95_ms']:.1f} | p95 < 100 |"
        )
    cells = [
        f"{results[b]['fanout']['p50_ms']:.1f} / {results[b]['fanout']['p95_ms']:.1f}"
        for b in backends
    ]
    lines.append(
        "| customer message → 50 agent sockets | "
        + " | ".join(cells)
        + f" | {bare['fanout']['p50_ms']:.1f} / {bare['fanout']['p95_ms']:.1f} | |"
    )
    lines.append("")
    (RESULTS / "inbox.md").write_text("\n".join(lines))
    print("\n".join(lines))
    worst = max(results[b][k]["p95_ms"] for b in backends for k in ("queue", "conversation"))
    print(f"inbox_fanout_p95_ms: {results['sqlite']['fanout']['p95_ms']:.1f}")
    print(f"inbox_page_p95_ms_worst: {worst:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pg", default="", help="also on this PostgreSQL database (its own: it is filled)"
    )
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--serve", choices=["router", "bare"])
    parser.add_argument("--db")
    parser.add_argument("--size", type=int, default=0)
    args = parser.parse_args()
    if args.serve == "router":
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_serve_router(args.db))
    elif args.serve == "bare":
        asyncio.run(_serve_bare(args.size))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
