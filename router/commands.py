"""What each ``relaydesk`` command does (its arguments are read by ``router.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import Bot, BotSettings
from bot.evaluation import evaluate, read_labelled, sample_warnings, tune
from knowledge import KnowledgeError, find_collisions
from knowledge.semantic import ModelNotInstalled
from router.config import Config, ConfigError, SlaConfig, load_config
from router.front_line import build_bot, build_matcher, cache_dir
from router.logs import config_secrets, configure_logging

if TYPE_CHECKING:
    from channels.wechat import WeChatApi
    from router.storage import Database

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
            return _serve(config, args.host, args.port)
        if args.command == "db":
            return asyncio.run(_db_upgrade(config))
        if args.command == "agents":
            if args.agents_command == "add":
                password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
                return asyncio.run(
                    _agents_add(
                        config,
                        args.name,
                        password=password,
                        role="admin" if args.admin else "lead" if args.lead else "agent",
                    )
                )
            if args.agents_command == "list":
                return asyncio.run(_agents_list(config))
            if args.agents_command == "email":
                return asyncio.run(_agents_email(config, args.name, args.address))
            password = sys.stdin.readline().rstrip("\n")
            return asyncio.run(
                _agents_change(config, args.name, args.agents_command, password=password)
            )
        if args.command == "telegram":
            return asyncio.run(_telegram_set_webhook(config, args.url))
        if args.command == "wechat":
            return asyncio.run(_wechat_check(config))
        if args.command == "report":
            return asyncio.run(_report(config, args))
        if args.command == "calendars":
            return asyncio.run(_calendars_check(config, args.on))
        if args.command == "kb" and getattr(args, "semantic", None) is not None:
            # --semantic: both scripts by meaning; --lexical: neither.
            knowledge = config.knowledge.model_copy(
                update={"semantic": args.semantic, "semantic_languages": ["zh", "en"]}
            )
            config = config.model_copy(update={"knowledge": knowledge})
        if args.command == "kb" and args.kb_command == "ask":
            return _kb_ask(config, args.question, as_json=args.json)
        if args.command == "kb" and args.kb_command == "check":
            return _kb_check(config, args.kb or config.knowledge.path)
        if args.command == "kb":
            if args.kb is not None:
                config = config.model_copy(
                    update={"knowledge": config.knowledge.model_copy(update={"path": args.kb})}
                )
            return _kb_evaluate(config, args)
    except (ConfigError, KnowledgeError, ModelNotInstalled, OSError, ValueError) as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    return 1


def _serve(config: Config, host: str | None, port: int | None) -> int:
    host = host or config.server.host
    port = port if port is not None else config.server.port
    # Said at once, before the knowledge base and the database are loaded for nothing.
    taken = _cannot_listen(host, port)
    if taken is not None:
        print(f"relaydesk: cannot listen on {host}:{port}: {taken}", file=sys.stderr)
        return 2
    asyncio.run(_run_server(config, host=host, port=port))
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (another process has it), or None."""
    if port == 0:
        return None
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


async def _run_server(config: Config, *, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully: stop intake, let
    in-flight work finish (up to ``server.shutdown_timeout_seconds``), close connections."""
    from aiohttp import web

    from router.app import create_app

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
        # What start-up made (the knowledge base, the matcher, the app) lives as long as
        # the process: out of the garbage collector's sight, a full collection no longer
        # walks it every time a request makes many objects (a month's report: 1.5-2x
        # faster; bench/report_bench.py does the same).
        gc.collect()
        gc.freeze()
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
    from router.builders import build_telegram

    await build_telegram(config).set_webhook(url)
    print(f"Telegram will send updates to {url}")
    return 0


async def _wechat_check(config: Config) -> int:
    """Whether WeChat gives us an access token with these credentials, and what to
    enter in the console (docs/wechat.md)."""
    from channels.wechat import MemoryChannelState, WeChatApi

    official, kf = config.channels.wechat, config.channels.wecom_kf
    if not official.enabled and not kf.enabled:
        print(
            "relaydesk: enable channels.wechat or channels.wecom_kf first (docs/wechat.md)",
            file=sys.stderr,
        )
        return 2
    base = (config.server.public_url or "https://<your public address>").rstrip("/")
    failed = False
    if official.enabled:
        api = WeChatApi(
            base_url=official.api_base_url,
            app_id=official.app_id,
            secret=official.app_secret,
            tokens=MemoryChannelState(),
        )
        if await _token_works(api, "WeChat", "app_id and app_secret", "IP白名单"):
            mode = "safe mode (安全模式)" if official.encoding_aes_key else "plain mode (明文模式)"
            print(f"Official Account: credentials work (an access token for {official.app_id})")
            print(f"  callback URL (服务器地址 URL): {base}{official.callback_path}")
            print(f"  token (令牌): as channels.wechat.token; message encryption: {mode}")
        else:
            failed = True
    if kf.enabled:
        api = WeChatApi(
            base_url=kf.api_base_url,
            app_id=kf.corp_id,
            secret=kf.secret,
            tokens=MemoryChannelState(),
            kind="wecom",
        )
        if await _token_works(api, "WeCom", "corp_id and secret", "企业可信IP"):
            print(f"WeCom customer service: credentials work (account {kf.open_kfid})")
            print(f"  callback URL (接收事件服务器 URL): {base}{kf.callback_path}")
            print("  Token and EncodingAESKey: as channels.wecom_kf")
        else:
            failed = True
    return 1 if failed else 0


async def _token_works(api: WeChatApi, platform: str, fields: str, allowlist: str) -> bool:
    from channels.base import DeliveryError

    await api.start()
    try:
        await api.token()
    except DeliveryError as exc:
        print(f"relaydesk: {platform} refused the credentials: {exc}", file=sys.stderr)
        print(
            f"  check {fields}, and that this server's IP address is on the "
            f"allowlist ({allowlist})",
            file=sys.stderr,
        )
        return False
    finally:
        await api.stop()
    return True


async def _database(config: Config) -> Database:
    from router.storage import Database

    db = Database(config.storage.url)
    await db.upgrade()
    return db


async def _db_upgrade(config: Config) -> int:
    db = await _database(config)
    await db.dispose()
    print("database schema is up to date")
    return 0


async def _agents_add(
    config: Config, name: str, *, password: str | None = None, role: str = "agent"
) -> int:
    name = name.strip()
    if not name:
        print("relaydesk: an agent needs a name", file=sys.stderr)
        return 2
    from router.builders import utc_now
    from router.inbox import Accounts

    db = await _database(config)
    try:
        accounts = Accounts(db=db, clock=utc_now)
        token = await accounts.create(name, password, role=role)
    except ValueError as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"{role} {name} added. API token (shown once):", file=sys.stderr)
    print(token)
    return 0


async def _agents_change(config: Config, name: str, action: str, *, password: str) -> int:
    from router.builders import utc_now
    from router.inbox import Accounts

    db = await _database(config)
    try:
        async with db.read() as repo:
            agent = await repo.agent_by_name(name)
        if agent is None:
            print(f"relaydesk: no agent named {name!r}", file=sys.stderr)
            return 2
        accounts = Accounts(db=db, clock=utc_now)
        if action == "password":
            await accounts.set_password(agent.id, password)
        else:
            await accounts.set_active(agent.id, action == "enable")
    except ValueError as exc:
        print(f"relaydesk: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"agent {name}: {action} done", file=sys.stderr)
    return 0


async def _agents_email(config: Config, name: str, address: str) -> int:
    address = address.strip()
    if address and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        print(f"relaydesk: {address!r} is not an email address", file=sys.stderr)
        return 2
    db = await _database(config)
    try:
        async with db.write() as repo:
            agent = await repo.agent_by_name(name)
            if agent is None:
                print(f"relaydesk: no agent named {name!r}", file=sys.stderr)
                return 2
            await repo.set_agent_email(agent.id, address or None)
    finally:
        await db.dispose()
    print(
        f"agent {name}: alerts {'to ' + address if address else 'in the inbox only'}",
        file=sys.stderr,
    )
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
        print(f"{agent.id}\t{agent.name}\t{agent.role}\t{state}\t{agent.created_at:%Y-%m-%d}")
    return 0


async def _sla_in_force(config: Config, db: Database) -> SlaConfig:
    """The SLA section in force: what an admin saved in the inbox, else config.yaml."""
    async with db.read() as repo:
        stored = await repo.setting("sla")
    if stored is None:
        return config.sla
    return SlaConfig.model_validate({**stored[0], "check_seconds": config.sla.check_seconds})


async def _calendars_check(config: Config, on: str | None) -> int:
    """Each calendar's holiday years; exit 1 when a year that needs them has none."""
    from router.builders import policies_from, utc_now
    from router.desk.sla import holiday_gaps, missing_holidays

    try:
        now = utc_now() if on is None else datetime.fromisoformat(on + "T12:00+00:00")
    except ValueError:
        print(f"relaydesk: --on: {on!r} is not a day like 2026-11-15", file=sys.stderr)
        return 2
    db = await _database(config)
    try:
        policies = policies_from(await _sla_in_force(config, db))
    finally:
        await db.dispose()
    for name, calendar in sorted(policies.calendars.items()):
        days = calendar.days.holidays | calendar.days.working_days
        years = sorted({d.year for d in days})
        if calendar.always_open:
            kept = "always open"
        elif not calendar.lists_holidays:
            kept = "no holiday lists"
        else:
            kept = "holidays for " + (", ".join(map(str, years)) or "no year")
        print(f"{name}: {kept}")
    for warning in missing_holidays(policies, now):
        print(f"warning: {warning}")
    return 1 if holiday_gaps(policies, now) else 0


async def _report(config: Config, args: argparse.Namespace) -> int:
    """The reports of a period on stdout, JSON or CSV; a progress bar on a terminal."""
    from router.builders import policies_from, utc_now
    from router.reporting.reports import DEFINITIONS, build_report, period
    from router.storage import ReportFilter

    try:
        start, end = period(args.start, args.end, config.sla.zone, utc_now())
    except ValueError as exc:
        print(f"relaydesk: --from/--to: {exc}", file=sys.stderr)
        return 2
    db = await _database(config)
    try:
        async with db.read() as repo:
            names = {a.id: a.name for a in await repo.agents()}
        sla = await _sla_in_force(config, db)
        report = await build_report(
            db,
            policies_from(sla),
            ReportFilter(
                start=start,
                end=end,
                channel=args.channel,
                agent_id=args.agent,
                language=args.language,
                tag=args.tag,
            ),
            zone=config.sla.zone,
            now=utc_now(),
            agent_names=names,
            progress=_report_progress,
        )
    finally:
        await db.dispose()
    if args.format == "json":
        print(
            json.dumps({**report.figures, "definitions": DEFINITIONS}, ensure_ascii=False, indent=2)
        )
        return 0
    tables = list(report.tables())
    if args.table and args.table not in tables:
        print(f"relaydesk: --table is one of {', '.join(tables)}", file=sys.stderr)
        return 2
    for index, table in enumerate([args.table] if args.table else tables):
        if not args.table:
            print(("\n" if index else "") + f"# {table}")
        sys.stdout.write(report.csv(table))
    return 0


def _report_progress(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // total
    print(
        f"\rreport [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="\n" if done == total else "",
        file=sys.stderr,
        flush=True,
    )


def _progress(done: int, total: int) -> None:
    """Indexing a large knowledge base: a progress line on the terminal."""
    if total < 5000 or not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(
        f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


# Raw scores at or above this: the questions are nearly the same text.
INDISTINCT_RAW = 92.0


def _kb_check(config: Config, path: Path) -> int:
    """Errors: entries the bot cannot tell apart (it would offer both instead of answering).
    Warnings: entries whose questions match each other above the answer threshold."""
    matcher = build_matcher(
        config.knowledge, path=path, progress=_progress, cache=cache_dir(config)
    )
    collisions = find_collisions(matcher, threshold=config.bot.answer_threshold)
    errors = [c for c in collisions if c.duplicate or c.raw >= INDISTINCT_RAW]
    print(f"{len(matcher)} entries in {path}")
    for c in collisions:
        if c.duplicate:
            label = "error: same question"
        elif c.raw >= INDISTINCT_RAW:
            label = f"error: {c.score:.0f} (raw {c.raw:.0f}), too close to tell apart"
        else:
            label = f"warning: {c.score:.0f}"
        print(f"  {label}: {c.entry} ↔ {c.other}: {c.question!r}")
    print(
        f"{len(errors)} error(s), {len(collisions) - len(errors)} warning(s) "
        f"(answer threshold {config.bot.answer_threshold:g})"
    )
    return 1 if errors else 0


def _bar(label: str) -> Callable[[int, int], None]:
    """A progress line on the terminal (nothing when stderr is not one)."""

    def show(done: int, total: int) -> None:
        if not sys.stderr.isatty() or total <= 0:
            return
        width = 30
        filled = width * done // total
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="\n" if done >= total else "",
            file=sys.stderr,
            flush=True,
        )

    return show


def _kb_evaluate(config: Config, args: argparse.Namespace) -> int:
    bot = build_bot(config, progress=_progress)
    queries = read_labelled(args.file)
    current = evaluate(bot, queries, progress=_bar("measuring"))
    settings, met = tune(
        bot,
        queries,
        max_wrong=args.max_wrong,
        min_oos_recall=args.min_oos_recall,
        progress=_bar("matching for tuning"),
    )
    tuned = evaluate(Bot(matcher=bot.matcher, settings=settings, texts=bot.texts), queries)
    warnings = sample_warnings(current)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.kb_command == "tune":
        _write_thresholds(args.config, settings)
        print(
            f"wrote answer_threshold {settings.answer_threshold:g}, clarify_threshold "
            f"{settings.clarify_threshold:g}, clarify_margin {settings.clarify_margin:g} "
            f"to {args.config}"
            + ("" if met else " (targets not met: these give the fewest wrong answers)")
            + (f"; chosen from only {current.queries} questions" if warnings else "")
        )
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    **current.as_dict(),
                    "tuned": {**tuned.as_dict(), "targets_met": met},
                    "targets": {"max_wrong": args.max_wrong, "min_oos_recall": args.min_oos_recall},
                    "warnings": warnings,
                },
                ensure_ascii=False,
            )
        )
        return 0
    for title, report in (("with the configured thresholds", current), ("tuned", tuned)):
        print(
            f"{title}: answer {report.thresholds['answer']:g}, "
            f"clarify {report.thresholds['clarify']:g}, margin {report.thresholds['margin']:g}"
        )
        print(f"  queries            {report.queries} ({report.answerable} answerable)")
        for label, key in (
            ("in-scope accuracy", "in_scope_accuracy"),
            ("wrong answers", "wrong_answer_rate"),
            ("clarified", "clarify_rate"),
            ("  right one offered", "clarify_hit_rate"),
            ("out-of-scope recall", "oos_recall"),
        ):
            print(f"  {label:<19}{getattr(report, key):7.1%}")
        for group, rates in [*report.groups.items(), *report.scripts.items()]:
            print(
                f"  [{group}] accuracy {rates['in_scope_accuracy']:.1%}, wrong "
                f"{rates['wrong_answer_rate']:.1%}, oos recall {rates['oos_recall']:.1%}"
            )
    if not met:
        print(
            f"no thresholds meet wrong <= {args.max_wrong:.1%} with oos recall >= "
            f"{args.min_oos_recall:.1%}; the tuned ones give the fewest wrong answers"
        )
    return 0


def _write_thresholds(path: Path, settings: BotSettings) -> None:
    """Replace the thresholds and margin in the bot section, keeping the file's comments."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    section = None
    wanted = {
        "answer_threshold": settings.answer_threshold,
        "clarify_threshold": settings.clarify_threshold,
        "clarify_margin": settings.clarify_margin,
    }
    for index, line in enumerate(lines):
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            section = line.strip().rstrip(":")
        key = line.strip().split(":", 1)[0]
        if section == "bot" and key in wanted and line.startswith("  "):
            lines[index] = f"  {key}: {wanted.pop(key):g}\n"
    if wanted:
        raise ValueError(f"{path}: no bot.{' / bot.'.join(wanted)} line to update")
    path.write_text("".join(lines), encoding="utf-8")
    load_config(path)  # still valid


def _kb_ask(config: Config, question: str, *, as_json: bool) -> int:
    bot = build_bot(config)
    decision = bot.decide(question)
    reads = bot.matcher.reads_meaning
    k = config.knowledge
    missing = [
        script for script in (k.semantic_languages if k.semantic else ()) if not reads.get(script)
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "decision": decision.kind.value,
                    "entry": decision.entry_id,
                    "reason": decision.reason,
                    "language": decision.language,
                    "reads_meaning": reads,
                    "candidates": [
                        {
                            "id": c.id,
                            "score": c.score,
                            "question": c.question,
                            "components": dict(c.components),
                        }
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
    by_meaning = ", ".join(script for script, on in reads.items() if on) or "none"
    print(f"read by meaning: {by_meaning}")
    if missing:
        print(
            f"warning:  asked to read {', '.join(missing)} by meaning, but the model is not "
            "available on this machine: read by characters and words only"
        )
    print("candidates (score: calibrated chance in %; the raw branch score is listed last):")
    for c in decision.candidates:
        parts = " ".join(f"{name} {value:3.0f}" for name, value in c.components)
        print(f"  {c.score:5.1f}  {c.id:<22} [{parts}]  {c.question}")
    return 0
