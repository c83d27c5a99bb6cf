"""Telegram benchmark, two ratios measured in one run on this machine.

    .venv/bin/python bench/telegram_bench.py [--updates 2000] [--concurrency 20]

1. Webhook intake: updates per second until the message is committed and the bot has
   decided, against a bare aiohttp handler that only parses the same JSON. The load
   generator, the servers and the local Bot API server run in separate processes.
2. Outbound: replies per second through python-telegram-bot (our channel's send, flood
   limits off) against raw aiohttp POSTs of the same sendMessage requests.

Details go to bench/results/telegram.json and telegram.md; the last line is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TOKEN = "123456:BENCH-TOKEN"
SECRET = "bench-webhook-secret-0123"
QUESTIONS = [
    "How do I return an item?",
    "退款多久到账",
    "How long is the warranty?",
    "怎么开发票",
    "When will my order ship?",
]


# -- roles (each its own process) ---------------------------------------------------


async def _serve_forever(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def fake_telegram() -> None:
    from tests.support.telegram_api import FakeTelegram

    async def main() -> None:
        fake = FakeTelegram(token=TOKEN)
        await _serve_forever(fake.app())

    asyncio.run(main())


def serve_bare(*, with_bot: bool = False) -> None:
    """A handler that parses the update; ``with_bot``: and runs the project's own
    ``Bot.decide`` on its text (nothing stored, nothing sent): the bot's share of the work."""
    from aiohttp import web

    decide = None
    if with_bot:
        from bot import Bot
        from knowledge import Matcher, Normaliser, load_folder, load_synonyms

        kb = ROOT / "knowledge" / "demo"
        decide = Bot(
            matcher=Matcher(load_folder(kb), normaliser=Normaliser(load_synonyms(kb)))
        ).decide

    async def handler(request: web.Request) -> web.Response:
        update = await request.json()
        if decide is not None:
            decide(str(update.get("message", {}).get("text", "")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/telegram/webhook", handler)
    asyncio.run(_serve_forever(app))


def serve_router(api_url: str) -> None:
    import logging

    import yaml

    from router.app import create_app
    from router.config import load_config

    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="relaydesk-tg-bench-"))
    raw = {
        "server": {"data_dir": str(workdir), "secret_key": "bench-secret-key-0123456789"},
        "storage": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"},
        "knowledge": {"path": str(ROOT / "knowledge" / "demo")},
        "channels": {
            "webchat": {"enabled": False},
            "telegram": {
                "enabled": True,
                "token": TOKEN,
                "mode": "webhook",
                "webhook_secret": SECRET,
                "api_base_url": api_url,
                "per_chat_interval_seconds": 0,
                "messages_per_second": 0,
            },
        },
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    asyncio.run(_serve_forever(create_app(load_config(workdir / "config.yaml"))))


def _update(n: int) -> dict[str, Any]:
    chat = 1000 + n % 50
    return {
        "update_id": n + 1,
        "message": {
            "message_id": n + 1,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Bench"},
            "from": {"id": chat, "is_bot": False, "first_name": "Bench"},
            "text": QUESTIONS[n % len(QUESTIONS)],
        },
    }


async def load(url: str, updates: int, concurrency: int) -> dict[str, Any]:
    bodies = [json.dumps(_update(n)).encode() for n in range(updates)]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []

    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 200, await response.text()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "updates": updates,
        "seconds": elapsed,
        "per_second": updates / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


async def outbound(api_url: str, messages: int, concurrency: int) -> dict[str, Any]:
    from channels.base import ChannelAddress, InboundReceipt, OutboundKind, OutboundMessage
    from channels.telegram import TelegramChannel, TelegramSettings

    async def nothing(_: Any) -> InboundReceipt:
        raise AssertionError("no inbound in this benchmark")

    channel = TelegramChannel(
        settings=TelegramSettings(
            token=TOKEN,
            mode="polling",  # polling mode, but never started: send only
            api_base_url=api_url,
            per_chat_interval_seconds=0,
            messages_per_second=0,
        ),
        attachments_dir=Path(tempfile.mkdtemp()),
    )
    await channel._app.initialize()  # what start() does, without the poller
    text = "Once approved, the refund goes back to the original payment method."

    async def timed(send: Any) -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                await send(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return messages / (time.perf_counter() - started)

    async def through_ptb(n: int) -> None:
        await channel.send(
            OutboundMessage(
                address=ChannelAddress(channel="telegram", recipient_id=str(1000 + n % 50)),
                conversation_id=1,
                text=text,
                kind=OutboundKind.ANSWER,
                idempotency_key=f"bench-{n}",
            )
        )

    async with aiohttp.ClientSession() as session:

        async def raw(n: int) -> None:
            form = {"chat_id": str(1000 + n % 50), "text": text}
            async with session.post(f"{api_url}/bot{TOKEN}/sendMessage", data=form) as response:
                assert response.status == 200

        raw_rate = await timed(raw)
        ptb_rate = await timed(through_ptb)
    await channel._app.shutdown()
    return {"ptb_per_second": ptb_rate, "raw_per_second": raw_rate, "ratio": ptb_rate / raw_rate}


# -- the orchestrator ---------------------------------------------------------------


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        raise RuntimeError(f"{args} did not start")
    return process, int(port)


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def orchestrate(args: argparse.Namespace) -> None:
    processes = []
    try:
        fake, fake_port = _spawn("--role", "fake-telegram")
        processes.append(fake)
        api_url = f"http://127.0.0.1:{fake_port}"
        results: dict[str, Any] = {
            "updates": args.updates,
            "concurrency": args.concurrency,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }
        for kind in ("bare", "bot-echo", "router"):
            role = ["--role", f"serve-{kind}"]
            server, port = _spawn(*role, "--api-url", api_url)
            processes.append(server)
            url = f"http://127.0.0.1:{port}/telegram/webhook"
            results[kind] = _child(
                "--role", "load", "--url", url, "--updates", str(args.updates),
                "--concurrency", str(args.concurrency),
            )  # fmt: skip
            server.terminate()
            server.wait(timeout=30)
        results["outbound"] = _child(
            "--role", "outbound", "--api-url", api_url, "--updates", str(args.updates),
            "--concurrency", str(args.concurrency),
        )  # fmt: skip
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    intake = results["router"]["per_second"] / results["bare"]["per_second"]
    to_bot = results["router"]["per_second"] / results["bot-echo"]["per_second"]
    results["intake_ratio"] = intake
    results["intake_ratio_to_bot_echo"] = to_bot
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "telegram.json").write_text(json.dumps(results, indent=2) + "\n")
    out = results["outbound"]
    lines = [
        "# Telegram benchmark",
        "",
        f"`bench/telegram_bench.py --updates {args.updates} --concurrency {args.concurrency}`, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite.",
        "",
        "| measure | RelayDesk | baseline | ratio | target |",
        "|---|---|---|---|---|",
        f"| webhook updates/s to committed message + bot decision "
        f"| {results['router']['per_second']:.0f} | {results['bare']['per_second']:.0f} "
        f"(bare aiohttp handler parsing the JSON) | {intake:.3f} | |",
        f"| the same, against the bot echo (bare handler + `Bot.decide`) "
        f"| {results['router']['per_second']:.0f} | {results['bot-echo']['per_second']:.0f} "
        f"| {to_bot:.3f} | ≥ 0.5 |",
        f"| webhook p50 / p99 at {args.concurrency} concurrent "
        f"| {results['router']['p50_ms']:.1f} / {results['router']['p99_ms']:.1f} ms "
        f"| {results['bare']['p50_ms']:.1f} / {results['bare']['p99_ms']:.1f} ms | | |",
        f"| outbound sendMessage/s (flood limits off) | {out['ptb_per_second']:.0f} "
        f"(python-telegram-bot) | {out['raw_per_second']:.0f} (raw aiohttp POST) "
        f"| {out['ratio']:.3f} | |",
        "",
    ]
    (RESULTS / "telegram.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"telegram_outbound_ratio: {out['ratio']:.3f}")
    print(f"telegram_intake_ratio: {intake:.3f}")
    print(f"telegram_intake_ratio_to_bot_echo: {to_bot:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--role",
        choices=[
            "fake-telegram",
            "serve-bare",
            "serve-bot-echo",
            "serve-router",
            "load",
            "outbound",
        ],
    )
    parser.add_argument("--api-url")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.role == "fake-telegram":
        fake_telegram()
    elif args.role == "serve-bare":
        serve_bare()
    elif args.role == "serve-bot-echo":
        serve_bare(with_bot=True)
    elif args.role == "serve-router":
        serve_router(args.api_url)
    elif args.role == "load":
        print(json.dumps(asyncio.run(load(args.url, args.updates, args.concurrency))))
    elif args.role == "outbound":
        print(json.dumps(asyncio.run(outbound(args.api_url, args.updates, args.concurrency))))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
