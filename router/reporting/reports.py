"""How the desk and the bot are doing, honestly: the figures behind the reports page,
the JSON API, the CSV export and ``relaydesk report``.

Every figure has a definition (``router.reporting.definitions``) and the conversations behind it
(``Report.behind``, for the drill-down). The bot's share of conversations it
resolved is two figures, never one: *confirmed* (the customer thanked it after an
answer) and *assumed* (it answered, nobody was handed the conversation, and the
customer did not write again within ``return_hours``); conversations too recent to
tell are *pending*. Response and resolution times are counted in the business
hours of each conversation's SLA policy.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from defusedcsv import csv

from router.desk.sla import SlaPolicies
from router.reporting import figures
from router.reporting.figures import percentile
from router.storage import Database, ReportFilter, Repositories

_T = TypeVar("_T")

__all__ = [
    "Report",
    "build_report",
    "conversations_behind",
    "heatmap_conversations",
    "percentile",
]

BOT_ANSWERS = {"match", "choice"}


@dataclass
class Report:
    """The figures, and the conversations behind each (figure → key → ids)."""

    figures: dict[str, Any]
    behind: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def conversations(self, figure: str, key: str) -> list[int]:
        return self.behind.get(figure, {}).get(key, [])

    def tables(self) -> dict[str, list[list[Any]]]:
        """Every table of the report, with a header row: what the CSV export writes."""
        f = self.figures
        people = f["people"]
        tables: dict[str, list[list[Any]]] = {
            "volume_by_channel": [["channel", "conversations", "customer_messages"]]
            + [
                [ch, n, f["volume"]["messages_by_channel"].get(ch, 0)]
                for ch, n in f["volume"]["by_channel"].items()
            ],
            "heatmap": [["weekday", "hour", "customer_messages"]]
            + [list(cell) for cell in f["volume"]["heatmap"]],
            "bot_outcomes": [["outcome", "conversations"]]
            + [[k, v] for k, v in f["bot"]["outcomes"].items()],
            "handoffs_by_reason": [["reason", "conversations"]]
            + [[k, v] for k, v in f["bot"]["handoffs_by_reason"].items()],
            "response_times": [["metric", "group", "key", "count", "p50_seconds", "p90_seconds"]]
            + [
                [metric, group, key, s["count"], s["p50"], s["p90"]]
                for metric, data in people["times"].items()
                for group in ("by_channel", "by_agent")
                for key, s in data[group].items()
            ],
            "sla_attainment": [["group", "key", "met", "missed", "rate"]]
            + [
                [group, key, s["met"], s["missed"], s["rate"]]
                for group in ("by_policy", "by_metric", "by_agent")
                for key, s in people["sla"][group].items()
            ],
            "backlog": [["date", "open_with_people"]] + [list(p) for p in people["backlog"]],
            "satisfaction": [["group", "key", "rated", "average"]]
            + [
                [group, key, s["rated"], s["average"]]
                for group in ("by_agent", "by_channel")
                for key, s in f["satisfaction"][group].items()
            ],
            "comments": [["conversation", "score", "comment"]]
            + [
                [c["conversation"], c["score"], c["comment"]] for c in f["satisfaction"]["comments"]
            ],
        }
        return tables

    def csv(self, table: str) -> str:
        """One table as CSV; KeyError for a table there is not.

        Customers' words (comments, tags) reach these cells: defusedcsv quotes a cell
        that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@`` …), and
        leading tabs and line breaks, which it does not look behind, are dropped first.
        """
        out = io.StringIO()
        writer = csv.writer(out)
        for row in self.tables()[table]:
            writer.writerow([c.lstrip("\t\r\n") if isinstance(c, str) else c for c in row])
        return out.getvalue()


async def build_report(
    db: Database,
    policies: SlaPolicies,
    where: ReportFilter,
    *,
    zone: ZoneInfo,
    now: datetime,
    agent_names: Mapping[int, str],
    return_hours: float = 24.0,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """The report for ``where``; ``progress(done, total)`` hears of each step."""
    steps = 9
    step = 0

    def advance() -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, steps)

    async def read(query: Callable[[Repositories], Awaitable[_T]]) -> _T:
        found = await db.reading(query)
        advance()
        return found

    days = _days(where.start, where.end, zone)
    # Independent reads, each in its own read unit, side by side: the database works on
    # several at once (SQLite on its reader threads, PostgreSQL on its backends) while
    # this thread turns the first results into figures.
    (rows, inbound, bot_turns, choices, handoffs, timers), backlog = await asyncio.gather(
        asyncio.gather(
            read(lambda repo: repo.report_rows(where, history=True)),
            read(lambda repo: repo.inbound_by_quarter(where)),
            read(lambda repo: repo.bot_turns(where, sorted(BOT_ANSWERS))),
            read(lambda repo: repo.choices_taken(where)),
            read(lambda repo: repo.report_handoffs(where)),
            read(lambda repo: repo.report_timers(where)),
        ),
        read(lambda repo: repo.backlog_at([end for _, end in days], where)),
    )
    report = Report(figures={})

    def add(figure: str, key: str, conversation_id: int) -> None:
        report.behind.setdefault(figure, {}).setdefault(key, []).append(conversation_id)

    def agent_label(agent_id: int | None) -> str:
        return "unassigned" if agent_id is None else agent_names.get(agent_id, f"#{agent_id}")

    window = return_hours * 3600  # seconds, as the rows' times are
    report.figures = {
        "period": {
            "from": where.start.isoformat(),
            "to": where.end.isoformat(),
            "timezone": zone.key,
            "filters": {
                "channel": where.channel,
                "agent": where.agent_id,
                "language": where.language,
                "tag": where.tag,
                "team": where.team,
            },
            "return_hours": return_hours,
        },
        "volume": figures.volume(rows, inbound, zone, add),
        "bot": figures.bot(
            rows, bot_turns, choices, handoffs, now=now.timestamp(), window=window, add=add
        ),
        "people": {
            **figures.people(rows, timers, policies, agent_label, add),
            "backlog": [[day.isoformat(), n] for (day, _), n in zip(days, backlog, strict=True)],
        },
        "satisfaction": figures.satisfaction(rows, agent_label, add),
    }
    advance()
    advance()
    return report


async def conversations_behind(
    db: Database,
    policies: SlaPolicies,
    where: ReportFilter,
    figure: str,
    key: str,
    *,
    zone: ZoneInfo,
    now: datetime,
    return_hours: float = 24.0,
) -> list[int]:
    """The conversations behind one figure of the report (the drill-down)."""
    if figure == "heatmap":
        return await heatmap_conversations(db, where, key, zone=zone)
    report = await build_report(
        db, policies, where, zone=zone, now=now, agent_names={}, return_hours=return_hours
    )
    return report.conversations(figure, key)


async def heatmap_conversations(
    db: Database, where: ReportFilter, key: str, *, zone: ZoneInfo
) -> list[int]:
    """The conversations with a customer message in one heatmap cell (``"weekday-hour"``,
    Monday = 0, local time)."""
    weekday, _, hour = key.partition("-")
    if not (weekday.isascii() and weekday.isdigit() and hour.isascii() and hour.isdigit()):
        return []
    if int(weekday) > 6 or int(hour) > 23:
        return []
    spans: set[tuple[datetime, datetime]] = set()
    for day, _ in _days(where.start, where.end, zone):
        if day.weekday() != int(weekday):
            continue
        for fold in (0, 1):  # the hour a clock change repeats is two spans
            local = datetime.combine(day, time(int(hour)), tzinfo=zone).replace(fold=fold)
            begins = local.astimezone(UTC)
            if begins.astimezone(zone).hour == int(hour):  # not skipped by a change
                spans.add((max(begins, where.start), min(begins + timedelta(hours=1), where.end)))
    async with db.read() as repo:
        return await repo.inbound_between(where, sorted(s for s in spans if s[0] < s[1]))


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, datetime]]:
    """Each local day of the period and the moment it ends."""
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    days: list[tuple[date, datetime]] = []
    day = first
    while day <= last and len(days) < 400:
        ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        days.append((day, min(ends, end)))
        day += timedelta(days=1)
    return days


def period(
    start: str | None, end: str | None, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """``from``/``to`` as local dates (``to`` inclusive); default: the last 7 days."""
    today = now.astimezone(zone).date()
    last = date.fromisoformat(end) if end else today
    first = date.fromisoformat(start) if start else last - timedelta(days=6)
    if first > last:
        raise ValueError("'from' is after 'to'")
    if (last - first).days > 366:
        raise ValueError("a report covers at most a year")
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone),
    )
