"""The ``relaydesk`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from knowledge import KnowledgeError
from router.app import build_bot, build_telegram, create_app, utc_now
from router.config import Config, ConfigError, load_config
from router.inbox import hash_token
from router.storage import Database

__all__ = ["main"]

logger = logging.getLogger("relaydesk")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaydesk", description="RelayDesk support router")
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations up to the newest")

    agents = commands.add_parser("agents", help="agent accounts")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    add = agent_commands.add_parser("add", help="add an agent and print its API token")
    add.add_argument("name")
    agent_commands.add_parser("list", help="list agents")

    telegram = commands.add_parser("telegram", help="the Telegram channel")
    telegram_commands = telegram.add_subparsers(dest="telegram_command", required=True)
    hook = telegram_commands.add_parser(
        "set-webhook", help="register this service's webhook URL and secret with Telegram"
    )
    hook.add_argument("url", help="e.g. https://support.example.com/telegram/webhook")

    kb = commands.add_parser("kb", help="knowledge base")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    ask = kb_commands.add_parser("ask", help="show what the bot would do with a question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        if args.command == "serve":
            return _serve(config, args.host, args.port)
        if args.command == "db":
            return asyncio.run(_db_upgrade(config))
        if args.command == "agents":
            if args.agents_command == "add":
                return asyncio.run(_agents_add(config, args.name))
            return asyncio.run(_agents_list(config))
        if args.command == "telegram":
            return asyncio.run(_telegram_set_webhook(config, args.url))
        if args.command == "kb":
            return _kb_ask(config, args.question, as_json=args.json)
    except (ConfigError, KnowledgeError) as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    return 1


def _serve(config: Config, host: str | None, port: int | None) -> int:
    asyncio.run(
        _run_server(
            config,
            host=host or config.server.host,
            port=port if port is not None else config.server.port,
        )
    )
    return 0


async def _run_server(config: Config, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully: stop intake, let
    in-flight work finish (up to ``server.shutdown_timeout_seconds``), close connections."""
    runner = web.AppRunner(
        create_app(config),
        access_log=None,
        shutdown_timeout=config.server.shutdown_timeout_seconds,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        for address in runner.addresses:
            logger.info("listening on http://%s:%s", *address[:2])
        await stop.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()
    logger.info("stopped")


async def _telegram_set_webhook(config: Config, url: str) -> int:
    settings = config.channels.telegram
    if not settings.enabled or settings.mode != "webhook":
        print("relaydesk: enable channels.telegram in webhook mode first", file=sys.stderr)
        return 2
    if not url.endswith(settings.webhook_path):
        print(f"relaydesk: the URL must end with {settings.webhook_path}", file=sys.stderr)
        return 2
    await build_telegram(config).set_webhook(url)
    print(f"Telegram will send updates to {url}")
    return 0


async def _database(config: Config) -> Database:
    db = Database(config.storage.url)
    await db.upgrade()
    return db


async def _db_upgrade(config: Config) -> int:
    db = await _database(config)
    await db.dispose()
    print("database schema is up to date")
    return 0


async def _agents_add(config: Config, name: str) -> int:
    name = name.strip()
    if not name:
        print("relaydesk: an agent needs a name", file=sys.stderr)
        return 2
    db = await _database(config)
    try:
        async with db.write() as repo:
            if await repo.agent_by_name(name) is not None:
                print(f"relaydesk: an agent named {name!r} already exists", file=sys.stderr)
                return 2
            token = secrets.token_urlsafe(32)
            agent = await repo.add_agent(name=name, token_hash=hash_token(token), now=utc_now())
    finally:
        await db.dispose()
    print(f"agent {agent.name} (id {agent.id}) added. API token (shown once):", file=sys.stderr)
    print(token)
    return 0


async def _agents_list(config: Config) -> int:
    db = await _database(config)
    try:
        async with db.read() as repo:
            agents = await repo.agents()
    finally:
        await db.dispose()
    for agent in agents:
        state = "active" if agent.active else "disabled"
        print(f"{agent.id}\t{agent.name}\t{state}\t{agent.created_at:%Y-%m-%d}")
    return 0


def _kb_ask(config: Config, question: str, *, as_json: bool) -> int:
    bot = build_bot(config)
    decision = bot.decide(question)
    if as_json:
        print(
            json.dumps(
                {
                    "decision": decision.kind.value,
                    "entry": decision.entry_id,
                    "reason": decision.reason,
                    "language": decision.language,
                    "candidates": [
                        {"id": c.id, "score": c.score, "question": c.question}
                        for c in decision.candidates
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(f"decision: {decision.kind.value} ({decision.reason})")
    if decision.entry_id:
        print(f"entry:    {decision.entry_id}")
    if decision.choices:
        print("choices:  " + " | ".join(c.label for c in decision.choices))
    if decision.text:
        print(f"reply:    {decision.text}")
    print("candidates:")
    for c in decision.candidates:
        print(f"  {c.score:5.1f}  {c.id:<24} {c.question}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
