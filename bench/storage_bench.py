"""Where an ingest's time goes: the cost of one statement through each storage layer.

    .venv/bin/python bench/storage_bench.py [--pg postgresql+asyncpg://postgres@127.0.0.1/test]

Measured in one run: a primary-key SELECT through raw aiosqlite, through SQLAlchemy's
async engine on aiosqlite (what RelayDesk uses), and on asyncpg when --pg is given;
then whole ingests (message stored, bot decision, reply queued) one after another.
Details go to bench/results/storage.md; the last line is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
from sqlalchemy import event, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import Bot  # noqa: E402
from channels.base import ChannelAddress, InboundMessage, SenderIdentity  # noqa: E402
from knowledge import Matcher, load_folder  # noqa: E402
from router.builders import utc_now  # noqa: E402
from router.delivery.events import EventBus  # noqa: E402
from router.delivery.outbox import OutboxDispatcher  # noqa: E402
from router.delivery.retry import RetryPolicy  # noqa: E402
from router.desk.handoff import Handoffs  # noqa: E402
from router.desk.pipeline import Router  # noqa: E402
from router.desk.promises import Promises  # noqa: E402
from router.desk.sla import SlaPolicies  # noqa: E402
from router.desk.work import Units  # noqa: E402
from router.storage import Database  # noqa: E402
from router.storage.models import ContactRow  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def per_call(action: Callable[[], Awaitable[object]], count: int) -> float:
    """Median microseconds per call over five rounds."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            await action()
        rounds.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(rounds)


async def statement_costs(sqlite_path: Path, pg_url: str | None) -> dict[str, float]:
    costs: dict[str, float] = {}
    async with aiosqlite.connect(sqlite_path) as raw:

        async def raw_select() -> object:
            async with raw.execute("SELECT id FROM contacts WHERE id = 1") as cursor:
                return await cursor.fetchall()

        costs["raw aiosqlite"] = await per_call(raw_select, 500)
    for name, url, options in [
        ("SQLAlchemy + aiosqlite", f"sqlite+aiosqlite:///{sqlite_path}", {}),
        *([("SQLAlchemy + asyncpg", pg_url, {"connect_args": PG_CONNECT_ARGS})] if pg_url else []),
    ]:
        db = Database(url, **options)
        await db.upgrade()
        async with db.read() as repo:
            session = repo.session

            async def orm_select(session: Any = session) -> object:
                return (
                    await session.execute(select(ContactRow.id).where(ContactRow.id == 1))
                ).all()

            costs[name] = await per_call(orm_select, 500)
        await db.dispose()
    return costs


SCHEMA = f"bench_{uuid.uuid4().hex[:8]}"


# Everything of this run goes into its own schema, dropped at the end.
PG_CONNECT_ARGS: dict[str, Any] = {"server_settings": {"search_path": SCHEMA}}


async def ingest_rate(url: str, count: int, **options: Any) -> tuple[float, float, float]:
    """Sequential ingests per second, and per ingest: SQL statements and commits (on
    PostgreSQL each is a round trip; SQLite's writer runs them on the event loop)."""
    db = Database(url, **options)
    await db.upgrade()
    counts = {"statements": 0, "commits": 0}

    def count_statement(*_: Any) -> None:
        counts["statements"] += 1

    def count_commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", count_statement)
    event.listen(db.write_engine.sync_engine, "commit", count_commit)
    events = EventBus()
    outbox = OutboxDispatcher(
        db=db, channels={}, events=events, policy=RetryPolicy(), clock=utc_now
    )

    bot = Bot(matcher=Matcher(load_folder(ROOT / "knowledge" / "demo")))
    router = Router(
        units=Units(db=db, outbox=outbox, events=events, clock=utc_now),
        bot=bot,
        handoffs=Handoffs(
            promises=Promises(
                SlaPolicies.simple(
                    {"low": 240, "normal": 60, "high": 15, "urgent": 5}, ZoneInfo("UTC")
                )
            ),
            texts=bot.texts,
        ),
    )
    # Storage only: replies stay queued, nothing is sent.
    outbox.deliver_now = lambda items: None  # type: ignore[method-assign]
    started = time.perf_counter()
    for n in range(count):
        sender = f"c{n % 50}"
        await router.ingest(
            InboundMessage(
                external_id=f"m{n}",
                address=ChannelAddress(channel="bench", recipient_id=sender),
                sender=SenderIdentity(channel="bench", external_id=sender),
                text="How long is the warranty?",
            )
        )
    rate = count / (time.perf_counter() - started)
    await db.dispose()
    return rate, counts["statements"] / count, counts["commits"] / count


async def main(pg_url: str | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="relaydesk-storage-bench-"))
    seed = Database(f"sqlite+aiosqlite:///{workdir / 'costs.db'}")
    await seed.upgrade()
    await seed.dispose()
    if pg_url:
        from sqlalchemy.ext.asyncio import create_async_engine

        admin = create_async_engine(pg_url)
        async with admin.begin() as connection:
            await connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    costs = await statement_costs(workdir / "costs.db", pg_url)
    rates = {"SQLite": await ingest_rate(f"sqlite+aiosqlite:///{workdir / 'ingest.db'}", 1000)}
    if pg_url:
        async with admin.begin() as connection:  # a fresh schema for the ingests
            await connection.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
            await connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        rates["PostgreSQL"] = await ingest_rate(pg_url, 1000, connect_args=PG_CONNECT_ARGS)
        async with admin.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        await admin.dispose()
    base = costs["raw aiosqlite"]
    lines = [
        "# Storage benchmark",
        "",
        f"`bench/storage_bench.py{' --pg …' if pg_url else ''}`, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        "",
        "| one primary-key SELECT through | µs | × raw aiosqlite |",
        "|---|---|---|",
        *(f"| {name} | {cost:.0f} | {cost / base:.1f} |" for name, cost in costs.items()),
        "",
        "| sequential ingests (stored, bot decision, reply queued) | messages/s "
        "| statements / ingest | commits / ingest |",
        "|---|---|---|---|",
        *(
            f"| {name} | {rate:.0f} | {statements:.1f} | {commits:.1f} |"
            for name, (rate, statements, commits) in rates.items()
        ),
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "storage.md").write_text("\n".join(lines))
    print("\n".join(lines))
    ratio = costs["SQLAlchemy + aiosqlite"] / base
    print(f"sqlalchemy_aiosqlite_statement_cost_vs_raw: {ratio:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pg", help="a PostgreSQL URL (asyncpg) to measure as well")
    asyncio.run(main(parser.parse_args().pg))
