"""Reports and the knowledge-base gap view on a big history, against a plain count.

    .venv/bin/python bench/report_bench.py [--conversations 100000] [--messages 2000000]
                                           [--pg postgresql+asyncpg://postgres@127.0.0.1/test]

A year of history (conversations spread evenly, a fifth handed to people with their
promises, ratings and handoffs; the rest of the messages customer and bot turns) is
written once per backend. Then, in one run: the reports of the last 30 days and the
gap view of the last 30 days (the work behind /inbox/reports and /inbox/reports/gaps),
p50/p95 over 7 runs each, against ``SELECT count(*)`` over conversations and messages
on the same database (p95 of 7). Target: p95 ≤ 500 ms. The gap view is measured
after the gap scan has seen the history (as the scheduler keeps it in the
background) and, for the record, before (3 runs: every message read, as just after
an upgrade); the scan's own time is given too. A heatmap cell's drill-down, and a
whole year's report and gap view, once each. As in `relaydesk serve`, the start-up
heap is frozen (gc.freeze) before measuring; on PostgreSQL, VACUUM ANALYZE follows the
bulk load and the scan, as autovacuum would on a live database. Details go to
bench/results/report.json and report.md; the last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge import Matcher, Normaliser, load_folder, load_synonyms  # noqa: E402
from router.desk.sla import SlaPolicies  # noqa: E402
from router.reporting.kb_gaps import find_gaps, scan_gaps  # noqa: E402
from router.reporting.reports import build_report, heatmap_conversations  # noqa: E402
from router.storage import Database, ReportFilter  # noqa: E402
from router.storage.models import (  # noqa: E402
    AgentRow,
    ContactRow,
    ConversationRow,
    HandoffRow,
    MessageRow,
    SlaTimerRow,
)

RESULTS = ROOT / "bench" / "results"
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
QUESTIONS = [
    "can I buy a gift card for my friend",
    "how do I buy a gift card for someone",
    "我想买礼品卡送朋友",
    "礼品卡怎么买",
    "do you ship to Mars",
    "我家猫把遥控器咬坏了怎么办",
    "How long is the warranty?",
    "怎么申请退货？",
]


async def seed(db: Database, conversations: int, messages: int) -> None:
    rng = random.Random(1)
    per = max(messages // conversations, 2)
    start = NOW - timedelta(days=365)
    step = timedelta(days=365) / conversations
    async with db.write() as repo:
        await repo.session.execute(
            insert(AgentRow),
            [
                {
                    "name": f"agent{n}",
                    "token_hash": uuid.uuid4().hex,
                    "active": True,
                    "created_at": start,
                    "role": "agent",
                }
                for n in range(1, 21)
            ],
        )
    contacts = conversations // 2
    for chunk in range(0, contacts, 20000):
        async with db.write() as repo:
            await repo.session.execute(
                insert(ContactRow),
                [
                    {"id": n + 1, "display_name": None, "email": None, "created_at": start}
                    for n in range(chunk, min(chunk + 20000, contacts))
                ],
            )
    message_id = 0
    for chunk in range(0, conversations, 5000):
        rows, msgs, handoffs, timers = [], [], [], []
        for n in range(chunk, min(chunk + 5000, conversations)):
            at = start + step * n
            human = n % 5 == 0
            rated = human and n % 3 == 0
            rows.append(
                {
                    "id": n + 1,
                    "contact_id": rng.randrange(contacts) + 1,
                    "channel": rng.choice(["webchat", "email", "telegram"]),
                    "thread_key": f"t{n}",
                    "reply_channel": "webchat",
                    "reply_recipient": f"t{n}",
                    "reply_thread": None,
                    "status": "resolved" if human else "bot",
                    "priority": 1,
                    "assignee_id": rng.randrange(20) + 1 if human else None,
                    "language": "zh" if n % 2 else "en",
                    "bot_misses": 0,
                    "created_at": at,
                    "updated_at": at + timedelta(minutes=per),
                    "handed_off_at": at + timedelta(minutes=1) if human else None,
                    "first_response_at": at + timedelta(minutes=20) if human else None,
                    "resolved_at": at + timedelta(hours=2) if human else None,
                    "sla_policy": "default" if human else None,
                    "survey_asked_at": at + timedelta(hours=2) if human else None,
                    "csat_score": rng.randint(1, 5) if rated else None,
                    "csat_comment": "ok" if rated else None,
                }
            )
            for k in range(per):
                message_id += 1
                customer = k % 2 == 0
                msgs.append(
                    {
                        "id": message_id,
                        "conversation_id": n + 1,
                        "direction": "in" if customer else "out",
                        "author_kind": "customer" if customer else "bot",
                        "kind": None if customer else "answer",
                        "text": rng.choice(QUESTIONS) if customer else "an answer",
                        "channel": "webchat",
                        "extras": None if customer else {"reason": "match"},
                        "created_at": at + timedelta(minutes=k),
                    }
                )
            if human:
                handoffs.append(
                    {
                        "conversation_id": n + 1,
                        "reason": "low_confidence",
                        "priority": 1,
                        "candidates": [],
                        "context": {},
                        "created_at": at + timedelta(minutes=1),
                    }
                )
                timers.append(
                    {
                        "conversation_id": n + 1,
                        "policy": "default",
                        "metric": "first_response",
                        "started_at": at + timedelta(minutes=1),
                        "due_at": at + timedelta(minutes=61),
                        "stopped_at": at + timedelta(minutes=20),
                        "outcome": "met",
                        "late_seconds": -2460.0,
                    }
                )
        async with db.write() as repo:
            session = repo.session
            await session.execute(insert(ConversationRow), rows)
            await session.execute(insert(MessageRow), msgs)
            if handoffs:
                await session.execute(insert(HandoffRow), handoffs)
                await session.execute(insert(SlaTimerRow), timers)


async def _analyze(db: Database) -> None:
    """On a live PostgreSQL autovacuum keeps statistics for the planner and marks pages
    all-visible; tables bulk-loaded a moment ago have neither (the planner guesses, and
    every read sets hint bits), so do what autovacuum would."""
    if db.dialect == "postgresql":
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))


async def timed(action: Callable[[], Awaitable[Any]], runs: int = 7) -> dict[str, float]:
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        await action()
        took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return {
        "p50_ms": statistics.median(took),
        "p95_ms": took[min(len(took) - 1, int(len(took) * 0.95))],
    }


async def measure(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    await seed(db, args.conversations, args.messages)
    seeded = time.perf_counter() - began
    await _analyze(db)
    policies = SlaPolicies.simple({"low": 240, "normal": 60, "high": 15, "urgent": 5}, ZONE)
    kb = ROOT / "knowledge" / "demo"
    matcher = Matcher(load_folder(kb), normaliser=Normaliser(load_synonyms(kb)))
    month = ReportFilter(start=NOW - timedelta(days=30), end=NOW)
    year = ReportFilter(start=NOW - timedelta(days=366), end=NOW)

    async def count() -> None:
        async with db.read() as repo:
            await repo.count_all()

    async def report(where: ReportFilter = month) -> Any:
        return await build_report(db, policies, where, zone=ZONE, now=NOW, agent_names={})

    async def gaps() -> Any:
        return await find_gaps(db, matcher, month)

    async def heatmap_cell() -> Any:
        return await heatmap_conversations(db, month, "2-10", zone=ZONE)

    # As `relaydesk serve` does once it has started (router.app): what start-up made
    # is moved out of the garbage collector's sight.
    gc.collect()
    gc.freeze()
    sample = await report()
    # Before the gap scan has seen anything (just after an upgrade): every conversation
    # is read message by message.
    cold = await timed(gaps, runs=3)
    scan_began = time.perf_counter()
    scanned = 0
    while found_now := await scan_gaps(db, now=NOW, limit=2000):
        scanned += found_now
    scan_seconds = time.perf_counter() - scan_began
    await _analyze(db)
    found = await gaps()
    year_began = time.perf_counter()
    await report(year)
    year_ms = (time.perf_counter() - year_began) * 1000
    year_gaps_began = time.perf_counter()
    await find_gaps(db, matcher, year)
    year_gaps_ms = (time.perf_counter() - year_gaps_began) * 1000
    results = {
        "seeded_seconds": seeded,
        "month_conversations": sample.figures["volume"]["conversations"],
        "gap_clusters": len(found),
        "gap_scan": {"conversations": scanned, "seconds": scan_seconds},
        "count": await timed(count),
        "report_30_days": await timed(report),
        "gaps_30_days": await timed(gaps),
        "gaps_30_days_before_scan": cold,
        "heatmap_cell_drill_down": await timed(heatmap_cell),
        "report_whole_year_ms": year_ms,
        "gaps_whole_year_ms": year_gaps_ms,
    }
    gc.unfreeze()
    return results


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "conversations": args.conversations,
        "messages": args.messages,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    with tempfile.TemporaryDirectory(prefix="relaydesk-report-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'report.db'}")
        await db.upgrade()
        results["sqlite"] = await measure(db, args)
        await db.dispose()
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = Database(args.pg)
        async with admin.write() as repo:
            await repo.session.execute(text(f"CREATE SCHEMA {schema}"))
        db = Database(args.pg, connect_args={"server_settings": {"search_path": schema}})
        try:
            await db.upgrade()
            results["postgres"] = await measure(db, args)
        finally:
            await db.dispose()
            async with admin.write() as repo:
                await repo.session.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await admin.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--pg")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Reports benchmark",
        "",
        f"`bench/report_bench.py --conversations {args.conversations} --messages "
        f"{args.messages}{' --pg …' if args.pg else ''}`, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}. A year of history; reports and gaps of the "
        "last 30 days.",
        "",
        "| backend | conversations in 30 days | `count(*)` p95 | reports p50 / p95 | × count | "
        "gap view p50 / p95 | × count | gap view before the scan p50 | heatmap cell p95 | "
        "whole-year report / gap view | gap scan | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    headline = 0.0
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        count = max(r["count"]["p95_ms"], 0.001)
        worst = max(r["report_30_days"]["p95_ms"], r["gaps_30_days"]["p95_ms"])
        headline = max(headline, worst)
        lines.append(
            f"| {backend} | {r['month_conversations']} | {count:.0f} ms "
            f"| {r['report_30_days']['p50_ms']:.0f} / {r['report_30_days']['p95_ms']:.0f} ms "
            f"| {r['report_30_days']['p95_ms'] / count:.1f} "
            f"| {r['gaps_30_days']['p50_ms']:.0f} / {r['gaps_30_days']['p95_ms']:.0f} ms "
            f"| {r['gaps_30_days']['p95_ms'] / count:.1f} "
            f"| {r['gaps_30_days_before_scan']['p50_ms']:.0f} ms "
            f"| {r['heatmap_cell_drill_down']['p95_ms']:.0f} ms "
            f"| {r['report_whole_year_ms'] / 1000:.1f} s / {r['gaps_whole_year_ms'] / 1000:.1f} s "
            f"| {r['gap_scan']['conversations']} in {r['gap_scan']['seconds']:.0f} s "
            "| p95 ≤ 500 ms |"
        )
    lines.append("")
    (RESULTS / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"report_p95_ms_30_days: {headline:.0f}")


if __name__ == "__main__":
    main()
