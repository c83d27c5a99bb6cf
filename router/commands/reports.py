"""`relaydesk report` and `relaydesk calendars check`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from router.commands.shared import database, sla_in_force
from router.config import Config


async def calendars_check(config: Config, on: str | None) -> int:
    """Each calendar's holiday years; exit 1 when a year that needs them has none."""
    from router.builders import utc_now
    from router.desk.sla import holiday_gaps, missing_holidays, policies_from

    try:
        now = utc_now() if on is None else datetime.fromisoformat(on + "T12:00+00:00")
    except ValueError:
        print(f"relaydesk: --on: {on!r} is not a day like 2026-11-15", file=sys.stderr)
        return 2
    db = await database(config)
    try:
        policies = policies_from(await sla_in_force(config, db))
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


async def report(config: Config, args: argparse.Namespace) -> int:
    """The reports of a period on stdout, JSON or CSV; a progress bar on a terminal."""
    from router.builders import utc_now
    from router.desk.sla import policies_from
    from router.reporting.definitions import DEFINITIONS
    from router.reporting.reports import build_report, period
    from router.storage import ReportFilter

    try:
        start, end = period(args.start, args.end, config.sla.zone, utc_now())
    except ValueError as exc:
        print(f"relaydesk: --from/--to: {exc}", file=sys.stderr)
        return 2
    db = await database(config)
    try:
        async with db.read() as repo:
            names = {a.id: a.name for a in await repo.agents()}
        sla = await sla_in_force(config, db)
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
