"""Promises at scale: due times in a year-long calendar, and follow-ups against the outbox.

    .venv/bin/python bench/sla_bench.py [--follow-ups 10000]

Reported, in one run:

* due-time computation (``BusinessCalendar.add``) on a year-long calendar with split
  shifts and mainland China's holidays and make-up days: p50/p99 per call over handoff
  times spread across 2026 and targets from 10 minutes to 3 days (target p99 ≤ 50 µs);
* the scheduler firing N due follow-ups (each: claimed, its message written and queued,
  delivered through the outbox to an in-memory channel) against the outbox's own
  delivery rate for N queued messages on the same database in the same run (target ≥ 0.5).

SQLite, the service's own code; details go to bench/results/sla.json and sla.md; the
last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import BotTexts  # noqa: E402
from channels.base import ChannelAddress  # noqa: E402
from channels.memory import MemoryChannel  # noqa: E402
from router.config import CalendarConfig  # noqa: E402
from router.conversations import AuthorKind, Priority  # noqa: E402
from router.delivery.events import EventBus  # noqa: E402
from router.delivery.outbox import OutboxDispatcher  # noqa: E402
from router.delivery.retry import RetryPolicy  # noqa: E402
from router.desk.aftercare import Aftercare  # noqa: E402
from router.desk.handoff import Handoffs  # noqa: E402
from router.desk.promises import Promises  # noqa: E402
from router.desk.scheduler import Scheduler  # noqa: E402
from router.desk.sla import SlaPolicies, calendar_from  # noqa: E402
from router.desk.work import Units  # noqa: E402
from router.storage import Database  # noqa: E402
from router.storage.models import OutboxRow  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def due_times(samples: int) -> dict[str, float]:
    office = calendar_from(
        "office",
        CalendarConfig(
            timezone="Asia/Shanghai",
            hours={"mon-fri": ["09:00-12:00", "13:30-18:00"], "sat": "10:00-16:00"},
            presets=["cn"],
        ),
        SHANGHAI,
    )
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=SHANGHAI)
    targets = [timedelta(minutes=m) for m in (10, 30, 60, 120, 480, 1440, 4320)]
    cases = [
        (start + timedelta(minutes=rng.randrange(365 * 24 * 60)), rng.choice(targets))
        for _ in range(samples)
    ]
    for moment, target in cases[:1000]:  # warm: the service keeps its calendars
        office.add(moment, target)
    timings = []
    clock = time.perf_counter_ns
    for moment, target in cases:
        began = clock()
        office.add(moment, target)
        timings.append((clock() - began) / 1000)
    timings.sort()
    return {
        "samples": samples,
        "p50_us": statistics.median(timings),
        "p99_us": timings[int(len(timings) * 0.99)],
        "max_us": timings[-1],
    }


async def seeded(db: Database, count: int, now: datetime, *, follow_ups: bool) -> list[int]:
    """``count`` resolved conversations, each with a follow-up due now (or not)."""
    ids = []
    async with db.write() as repo:
        for n in range(count):
            contact = await repo.create_contact(
                channel="memory", external_id=f"c{n}", display_name=None, email=None, now=now
            )
            conversation = await repo.create_conversation(
                contact_id=contact,
                address=ChannelAddress("memory", f"c{n}"),
                subject=None,
                now=now,
            )
            await repo.resolve(conversation.id, now)
            if follow_ups:
                await repo.schedule(
                    conversation_id=conversation.id,
                    kind="follow_up",
                    due_at=now,
                    text=None,
                    agent_id=None,
                    created_by=None,
                    now=now,
                )
            ids.append(conversation.id)
    return ids


def parts(db: Database, memory: MemoryChannel) -> tuple[OutboxDispatcher, Units, Scheduler]:
    events = EventBus()
    outbox = OutboxDispatcher(
        db=db,
        channels={"memory": memory},
        events=events,
        policy=RetryPolicy(),
        clock=lambda: datetime.now(UTC),
        batch_size=200,
    )
    units = Units(db=db, outbox=outbox, events=events, clock=lambda: datetime.now(UTC))
    handoffs = Handoffs(
        promises=Promises(SlaPolicies.simple({p.label: 60 for p in Priority}, ZoneInfo("UTC"))),
        texts=BotTexts(),
    )
    aftercare = Aftercare(handoffs=handoffs, texts=BotTexts(), secret=b"bench-secret")
    scheduler = Scheduler(
        units=units, promises=handoffs.promises, aftercare=aftercare, batch_size=200
    )
    return outbox, units, scheduler


async def outbox_rate(folder: Path, count: int) -> float:
    """Messages per second the outbox delivers when ``count`` are queued."""
    db = Database(f"sqlite+aiosqlite:///{folder / 'outbox.db'}")
    await db.upgrade()
    memory = MemoryChannel()
    outbox, units, _ = parts(db, memory)
    outbox.deliver_now = lambda items: None  # type: ignore[method-assign]
    now = datetime.now(UTC)
    ids = await seeded(db, count, now, follow_ups=False)
    async with units.write() as w:
        for conversation_id in ids:
            conversation = await w.repo.conversation(conversation_id)
            assert conversation is not None
            await w.say(
                conversation, "Is everything working?", author=AuthorKind.SYSTEM, kind="follow_up"
            )
        # Queued rows are reserved for the immediate delivery that was switched off:
        # due now, for the outbox's own loop.
        await w.repo.session.execute(
            update(OutboxRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    started = time.perf_counter()
    while len(memory.sent) < count:
        await outbox.deliver_due()
    elapsed = time.perf_counter() - started
    await db.dispose()
    return count / elapsed


async def scheduler_rate(folder: Path, count: int) -> float:
    """Follow-ups per second from due rows to delivered messages."""
    db = Database(f"sqlite+aiosqlite:///{folder / 'scheduler.db'}")
    await db.upgrade()
    memory = MemoryChannel()
    outbox, _, scheduler = parts(db, memory)
    await seeded(db, count, datetime.now(UTC) - timedelta(minutes=1), follow_ups=True)
    started = time.perf_counter()
    result = await scheduler.run_due()
    await memory.wait_for_sent(count, within=600)
    elapsed = time.perf_counter() - started
    assert result.done == count, result
    await outbox.stop()
    await db.dispose()
    return count / elapsed


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "due": due_times(args.samples),
    }
    with tempfile.TemporaryDirectory(prefix="relaydesk-sla-") as tmp:
        folder = Path(tmp)
        outbox = await outbox_rate(folder, args.follow_ups)
        fired = await scheduler_rate(folder, args.follow_ups)
    results["follow_ups"] = {
        "count": args.follow_ups,
        "scheduler_per_second": fired,
        "outbox_per_second": outbox,
        "ratio": fired / outbox,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--follow-ups", type=int, default=10000)
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sla.json").write_text(json.dumps(results, indent=2) + "\n")
    due, fu = results["due"], results["follow_ups"]
    lines = [
        "# Promises benchmark",
        "",
        f"`bench/sla_bench.py --samples {args.samples} --follow-ups {args.follow_ups}`, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite.",
        "",
        "| measure | RelayDesk | baseline | ratio | target |",
        "|---|---|---|---|---|",
        f"| due time in a year-long calendar (split shifts, cn holidays, 调休), per call "
        f"| p50 {due['p50_us']:.1f} µs, p99 {due['p99_us']:.1f} µs | | | p99 ≤ 50 µs |",
        f"| {fu['count']} due follow-ups fired and delivered, per second "
        f"| {fu['scheduler_per_second']:.0f} | {fu['outbox_per_second']:.0f} (the outbox "
        f"delivering {fu['count']} queued messages) | {fu['ratio']:.2f} | ≥ 0.5 |",
        "",
    ]
    (RESULTS / "sla.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"sla_due_p99_us: {due['p99_us']:.1f}")
    print(f"sla_follow_up_ratio_to_outbox: {fu['ratio']:.2f}")


if __name__ == "__main__":
    main()
