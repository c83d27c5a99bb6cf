"""Web-chat benchmark: the whole pipeline against a bare echo and a bot echo.

    .venv/bin/python bench/chat_bench.py [--visitors 50] [--seconds 8] [--idle 1000]

Servers and clients run in separate processes on this machine. Reported, in one run:

* throughput: answered messages per second with N visitors in a closed loop, through
  ingest (stored), the bot, the outbox and delivery; as a ratio of the bot echo (a bare
  aiohttp websocket calling the project's own ``Bot.decide``, nothing stored: the ceiling
  for doing the bot's work) and of the bare echo;
* latency p50/p99 at half the measured router throughput (open loop);
* resident memory per idle connected visitor.

Details go to bench/results/chat.json and chat.md; the last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUESTIONS = [
    "怎么申请退货？",
    "How do I return an item?",
    "退款多久到账",
    "How long is the warranty?",
    "怎么开发票",
    "How do I change my delivery address?",
    "我的快递到哪了",
    "Do you install the product?",
    "付款失败怎么办",
    "Where can I buy spare parts?",
]


# -- servers (run in their own process) ---------------------------------------------


def serve_router() -> None:
    sys.path.insert(0, str(ROOT))
    import yaml

    from router.app import create_app
    from router.config import load_config

    workdir = Path(tempfile.mkdtemp(prefix="relaydesk-bench-"))
    raw = {
        "server": {"data_dir": str(workdir), "secret_key": "bench-secret-key-0123456789"},
        "storage": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"},
        "knowledge": {"path": str(ROOT / "knowledge" / "demo")},
        # Every simulated visitor comes from one loopback address.
        "channels": {
            "webchat": {
                "rate_limit": {"burst": 1000, "per_minute": 100000},
                "new_visitors_per_minute": 1_000_000,
                "address_messages_per_minute": 10_000_000,
            }
        },
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    asyncio.run(_run(create_app(load_config(workdir / "config.yaml"))))


def serve_echo() -> None:
    asyncio.run(_run(_echo_app()))


def serve_bot_echo() -> None:
    asyncio.run(_run(_echo_app(with_bot=True)))


def _echo_app(*, with_bot: bool = False) -> Any:
    """A bare websocket that answers every message; ``with_bot``: with the project's own
    ``Bot.decide`` on the demo knowledge base (nothing stored), the bot's share of the work."""
    from aiohttp import WSMsgType, web

    decide = None
    if with_bot:
        sys.path.insert(0, str(ROOT))
        from bot import Bot
        from knowledge import Matcher, Normaliser, load_folder, load_synonyms

        kb = ROOT / "knowledge" / "demo"
        bot = Bot(matcher=Matcher(load_folder(kb), normaliser=Normaliser(load_synonyms(kb))))
        decide = bot.decide

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                frame = json.loads(message.data)
                if frame.get("type") == "hello":
                    await ws.send_json({"type": "welcome", "seq": 0})
                    continue
                text = frame["text"] if decide is None else decide(frame["text"]).text
                await ws.send_json({"type": "message", "author": "bot", "text": text})
        return ws

    app = web.Application()
    app.router.add_get("/api/chat/ws", handler)
    return app


async def _run(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(port, flush=True)  # the orchestrator reads the port from our first line
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# -- clients (run in their own process) ---------------------------------------------


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url, max_msg_size=0)
        await self.ws.send_json({"type": "hello", "token": None, "last_seq": 0})
        welcome = await self.ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome

    async def ask(self, text: str) -> float:
        assert self.ws is not None
        started = time.perf_counter()
        await self.ws.send_json({"type": "message", "client_id": uuid.uuid4().hex, "text": text})
        while True:
            frame = await self.ws.receive_json(timeout=30)
            if frame.get("type") == "message" and frame.get("author") == "bot":
                return time.perf_counter() - started
            if frame.get("type") == "error":
                raise RuntimeError(frame)


async def closed_loop(url: str, visitors: int, seconds: float) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        clients = [Client(session, url) for _ in range(visitors)]
        await asyncio.gather(*(c.connect() for c in clients))
        for c in clients:  # warm-up
            await c.ask(QUESTIONS[0])
        deadline = time.perf_counter() + seconds
        answered = 0

        async def run(client: Client, offset: int) -> None:
            nonlocal answered
            i = offset
            while time.perf_counter() < deadline:
                await client.ask(QUESTIONS[i % len(QUESTIONS)])
                answered += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))
        elapsed = time.perf_counter() - started
    return {"answered": answered, "seconds": elapsed, "per_second": answered / elapsed}


async def open_loop(url: str, visitors: int, rate: float, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        clients = [Client(session, url) for _ in range(visitors)]
        await asyncio.gather(*(c.connect() for c in clients))
        interval = visitors / rate
        deadline = time.perf_counter() + seconds

        async def run(client: Client, offset: int) -> None:
            rng = random.Random(offset)
            await asyncio.sleep(rng.uniform(0, interval))
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                latencies.append(await client.ask(QUESTIONS[i % len(QUESTIONS)]))
                i += 1
                # Poisson-ish arrivals around the target rate.
                pause = rng.expovariate(1 / interval) - (time.perf_counter() - started)
                await asyncio.sleep(max(pause, 0))

        await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))
    latencies.sort()
    return {
        "rate": rate,
        "samples": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def idle(url: str, count: int) -> None:
    """Connect ``count`` visitors, say so on stdout, hold them until stdin closes."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = [Client(session, url) for _ in range(count)]
        for start in range(0, count, 100):
            await asyncio.gather(*(c.connect() for c in clients[start : start + 100]))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- the orchestrator ---------------------------------------------------------------


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    process = _spawn("--serve", kind)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        raise RuntimeError(f"{kind} server did not start")
    return process, f"http://127.0.0.1:{port}/api/chat/ws"


def _client(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def _idle_memory(server: subprocess.Popen[str], url: str, count: int) -> float:
    before = _rss(server.pid)
    clients = _spawn("--idle-clients", url, "--count", str(count))
    assert clients.stdout is not None and clients.stdin is not None
    if clients.stdout.readline().strip() != "ready":
        raise RuntimeError("idle clients failed")
    time.sleep(1.0)  # let the server settle its buffers before reading its memory
    after = _rss(server.pid)
    clients.stdin.close()
    clients.wait(timeout=60)
    return (after - before) / count


def orchestrate(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {
        "visitors": args.visitors,
        "seconds": args.seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    for kind in ("echo", "bot-echo", "router"):
        server, url = _start_server(kind)
        try:
            results[kind] = {
                "throughput": _client(
                    "--closed",
                    url,
                    "--visitors",
                    str(args.visitors),
                    "--seconds",
                    str(args.seconds),
                )
            }
            if kind == "router":
                rate = results["router"]["throughput"]["per_second"] / 2
                results["router"]["latency_at_half_rate"] = _client(
                    "--open",
                    url,
                    "--visitors",
                    str(args.visitors),
                    "--rate",
                    f"{rate:.3f}",
                    "--seconds",
                    str(args.seconds),
                )
            if kind != "bot-echo":
                results[kind]["idle_bytes_per_visitor"] = _idle_memory(server, url, args.idle)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ratio = (
        results["router"]["throughput"]["per_second"] / results["echo"]["throughput"]["per_second"]
    )
    bot_ratio = (
        results["router"]["throughput"]["per_second"]
        / results["bot-echo"]["throughput"]["per_second"]
    )
    results["throughput_ratio"] = ratio
    results["throughput_ratio_to_bot_echo"] = bot_ratio
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chat.json").write_text(json.dumps(results, indent=2) + "\n")
    latency = results["router"]["latency_at_half_rate"]
    lines = [
        "# Web-chat benchmark",
        "",
        f"`bench/chat_bench.py --visitors {args.visitors} --seconds {args.seconds} "
        f"--idle {args.idle}`, {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite.",
        "",
        "| measure | RelayDesk | bot echo (bare + `Bot.decide`) | bare aiohttp echo | target |",
        "|---|---|---|---|---|",
        f"| answered messages/s ({args.visitors} visitors, closed loop) "
        f"| {results['router']['throughput']['per_second']:.0f} "
        f"| {results['bot-echo']['throughput']['per_second']:.0f} "
        f"| {results['echo']['throughput']['per_second']:.0f} | |",
        f"| RelayDesk as a share of | | {bot_ratio:.3f} | {ratio:.3f} | ≥ 0.5 of the bot echo |",
        f"| p50 / p99 latency at {latency['rate']:.0f} msg/s | {latency['p50_ms']:.1f} / "
        f"{latency['p99_ms']:.1f} ms | | | p99 ≤ 20 ms |",
        f"| memory per idle visitor | {results['router']['idle_bytes_per_visitor'] / 1024:.1f} KB "
        f"| | {results['echo']['idle_bytes_per_visitor'] / 1024:.1f} KB | ≤ 15 KB |",
        "",
    ]
    (RESULTS / "chat.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"chat_p99_ms_at_half_rate: {latency['p99_ms']:.1f}")
    print(f"chat_idle_kb_per_visitor: {results['router']['idle_bytes_per_visitor'] / 1024:.1f}")
    print(f"chat_throughput_ratio: {ratio:.3f}")
    print(f"chat_throughput_ratio_to_bot_echo: {bot_ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--idle", type=int, default=1000)
    # Internal: the roles of the child processes.
    parser.add_argument("--serve", choices=["router", "echo", "bot-echo"])
    parser.add_argument("--closed")
    parser.add_argument("--open")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--idle-clients")
    parser.add_argument("--count", type=int)
    args = parser.parse_args()
    if args.serve == "router":
        import logging

        logging.basicConfig(level=logging.WARNING)
        serve_router()
    elif args.serve == "echo":
        serve_echo()
    elif args.serve == "bot-echo":
        serve_bot_echo()
    elif args.closed:
        print(json.dumps(asyncio.run(closed_loop(args.closed, args.visitors, args.seconds))))
    elif args.open:
        print(json.dumps(asyncio.run(open_loop(args.open, args.visitors, args.rate, args.seconds))))
    elif args.idle_clients:
        asyncio.run(idle(args.idle_clients, args.count))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
