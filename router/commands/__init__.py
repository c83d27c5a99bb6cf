"""What each ``relaydesk`` command does (its arguments are read by ``router.cli``), one
module per group of commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from knowledge import KnowledgeError
from knowledge.semantic import ModelNotInstalled
from router.commands.accounts import (
    agents_add,
    agents_change,
    agents_email,
    agents_list,
    db_upgrade,
)
from router.commands.knowledge import kb_ask, kb_check, kb_evaluate
from router.commands.reports import calendars_check, report
from router.commands.service import serve, telegram_set_webhook, wechat_check
from router.config import ConfigError, load_config
from router.logs import config_secrets, configure_logging

# The service (aiohttp, every channel, the inbox) is imported by the commands that use
# it: `relaydesk kb ask` needs only the configuration and the bot.

__all__ = ["run"]

logger = logging.getLogger("relaydesk")


def run(args: argparse.Namespace) -> int:
    """Carry out the command ``args`` (from ``router.cli``) asks for; its exit status."""
    configure_logging()
    try:
        config = load_config(args.config)
        configure_logging(config_secrets(config))
        if args.command == "serve":
            return serve(config, args.host, args.port)
        if args.command == "db":
            return asyncio.run(db_upgrade(config))
        if args.command == "agents":
            if args.agents_command == "add":
                password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
                return asyncio.run(
                    agents_add(
                        config,
                        args.name,
                        password=password,
                        role="admin" if args.admin else "lead" if args.lead else "agent",
                    )
                )
            if args.agents_command == "list":
                return asyncio.run(agents_list(config))
            if args.agents_command == "email":
                return asyncio.run(agents_email(config, args.name, args.address))
            password = sys.stdin.readline().rstrip("\n")
            return asyncio.run(
                agents_change(config, args.name, args.agents_command, password=password)
            )
        if args.command == "telegram":
            return asyncio.run(telegram_set_webhook(config, args.url))
        if args.command == "wechat":
            return asyncio.run(wechat_check(config))
        if args.command == "report":
            return asyncio.run(report(config, args))
        if args.command == "calendars":
            return asyncio.run(calendars_check(config, args.on))
        if args.command == "kb" and getattr(args, "semantic", None) is not None:
            # --semantic: both scripts by meaning; --lexical: neither.
            knowledge = config.knowledge.model_copy(
                update={"semantic": args.semantic, "semantic_languages": ["zh", "en"]}
            )
            config = config.model_copy(update={"knowledge": knowledge})
        if args.command == "kb" and args.kb_command == "ask":
            return kb_ask(config, args.question, as_json=args.json)
        if args.command == "kb" and args.kb_command == "check":
            return kb_check(config, args.kb or config.knowledge.path)
        if args.command == "kb":
            if args.kb is not None:
                config = config.model_copy(
                    update={"knowledge": config.knowledge.model_copy(update={"path": args.kb})}
                )
            return kb_evaluate(config, args)
    except (ConfigError, KnowledgeError, ModelNotInstalled, OSError, ValueError) as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    return 1
