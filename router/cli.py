"""The ``relaydesk`` command: its arguments, read before anything else is imported,
so that help and a mistyped flag answer at once. The commands are in
``router.commands``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from router.reporting.tables import REPORT_TABLES

__all__ = ["main"]

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaydesk", description="RelayDesk support router")
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="default: ./config.yaml"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    _service(commands)
    _accounts(commands)
    _reports(commands)
    _channels(commands)
    _knowledge(commands)
    _config_anywhere(commands)
    return parser


def _service(commands: Commands) -> None:
    """Serving, and the database it serves from."""
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations up to the newest")


def _accounts(commands: Commands) -> None:
    """Agents' accounts."""
    agents = commands.add_parser("agents", help="agent accounts")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    add = agent_commands.add_parser(
        "add", help="add an agent and print its API token (for integrations)"
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage agents in the inbox")
    add.add_argument("--lead", action="store_true", help="an agent who also sees the reports")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read an inbox password (10+ characters) from standard input",
    )
    agent_commands.add_parser("list", help="list agents")
    for verb, text in (
        ("disable", "stop an agent's sessions and token at once"),
        ("enable", "let a disabled agent in again"),
        ("password", "set an agent's inbox password, read from standard input"),
    ):
        agent_commands.add_parser(verb, help=text).add_argument("name")
    email = agent_commands.add_parser(
        "email", help="where an agent's alerts (promises due, reminders) are mailed"
    )
    email.add_argument("name")
    email.add_argument("address", help="an email address; '' to stop mailing this agent")


def _reports(commands: Commands) -> None:
    """Reports and business calendars."""
    report = commands.add_parser(
        "report", help="the reports (volume, the bot, people, satisfaction) for a period"
    )
    report.add_argument(
        "--from", dest="start", help="first day, e.g. 2026-11-01 (default: 6 days ago)"
    )
    report.add_argument("--to", dest="end", help="last day, inclusive (default: today)")
    report.add_argument("--format", choices=["json", "csv"], default="json")
    report.add_argument(
        "--table",
        choices=REPORT_TABLES,
        metavar="TABLE",
        help="with --format csv: one table (default: all, one after another): "
        + ", ".join(REPORT_TABLES),
    )
    for name in ("channel", "language", "tag"):
        report.add_argument(f"--{name}")
    report.add_argument("--agent", type=int, help="an agent's id")

    calendars = commands.add_parser("calendars", help="the business calendars")
    calendar_commands = calendars.add_subparsers(dest="calendars_command", required=True)
    check_calendars = calendar_commands.add_parser(
        "check",
        help="the years each calendar has holidays for; exit 1 when this year, or next "
        "year within two months of it, has none",
    )
    check_calendars.add_argument("--on", help="as on this day, e.g. 2026-11-15 (default: today)")


def _channels(commands: Commands) -> None:
    """Setting up a channel."""
    telegram = commands.add_parser("telegram", help="the Telegram channel")
    telegram_commands = telegram.add_subparsers(dest="telegram_command", required=True)
    hook = telegram_commands.add_parser(
        "set-webhook", help="register this service's webhook URL and secret with Telegram"
    )
    hook.add_argument("url", help="e.g. https://support.example.com/telegram/webhook")

    wechat = commands.add_parser("wechat", help="the WeChat channel")
    wechat_commands = wechat.add_subparsers(dest="wechat_command", required=True)
    wechat_commands.add_parser(
        "check", help="check the credentials and print the callback URL to register"
    )


def _knowledge(commands: Commands) -> None:
    """The knowledge base and the bot."""
    kb = commands.add_parser("kb", help="knowledge base")
    kb_commands = kb.add_subparsers(dest="kb_command", required=True)
    ask = kb_commands.add_parser("ask", help="show what the bot would do with a question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    _semantic_flag(ask)
    check = kb_commands.add_parser(
        "check", help="report duplicate questions and entries that match each other"
    )
    check.add_argument("--kb", type=Path, help="another knowledge base (a file or folder)")
    _semantic_flag(check)
    for name, text in (
        ("eval", "measure the bot on a labelled CSV (header query,expected; expected: id or none)"),
        ("tune", "choose thresholds on a labelled CSV and write them to the config"),
    ):
        sub = kb_commands.add_parser(name, help=text)
        sub.add_argument("file", type=Path)
        sub.add_argument("--kb", type=Path, help="another knowledge base (a YAML file or folder)")
        sub.add_argument("--max-wrong", type=float, default=0.02, help="target: wrong answers")
        sub.add_argument(
            "--min-oos-recall", type=float, default=0.9, help="target: unanswerable handed off"
        )
        _semantic_flag(sub)
        if name == "eval":
            sub.add_argument("--json", action="store_true", help="print one JSON object")


def _config_anywhere(commands: Commands) -> None:
    """``--config`` before or after the command (``relaydesk kb ask --config x.yaml …``)."""
    for sub in commands.choices.values():
        sub.add_argument(
            "--config", type=Path, default=argparse.SUPPRESS, help="default: ./config.yaml"
        )
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _config_anywhere(action)


def _semantic_flag(parser: argparse.ArgumentParser) -> None:
    reading = parser.add_mutually_exclusive_group()
    reading.add_argument(
        "--semantic",
        action="store_const",
        const=True,
        dest="semantic",
        help="read by meaning too, as knowledge.semantic: true does",
    )
    reading.add_argument(
        "--lexical",
        action="store_const",
        const=False,
        dest="semantic",
        help="read by characters and words only, as knowledge.semantic: false does",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from router.commands import run

    return run(args)


if __name__ == "__main__":
    import sys

    sys.exit(main())
