"""How the desk and the bot are doing, honestly: the figures behind the reports page,
the JSON API, the CSV export and ``relaydesk report``.

Every figure has a definition (``DEFINITIONS``) and the conversations behind it
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
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from defusedcsv import csv

from router.desk.sla import SlaPolicies
from router.storage import Database, ReportFilter, Repositories

_T = TypeVar("_T")

__all__ = [
    "DEFINITIONS",
    "Report",
    "build_report",
    "conversations_behind",
    "heatmap_conversations",
    "percentile",
]

BOT_ANSWERS = {"match", "choice"}
REOPEN_REASONS = {"reopened", "reopened_by_customer", "follow_up_reply"}

DEFINITIONS: dict[str, dict[str, str]] = {
    "conversations": {
        "en": "Conversations opened in the period (by their first message).",
        "zh": "本期开始的会话数（以第一条消息的时间为准）。",
    },
    "messages": {
        "en": "Customer messages in those conversations, by channel.",
        "zh": "这些会话中客户发来的消息数，按渠道统计。",
    },
    "heatmap": {
        "en": "Customer messages by day of week and hour, in the desk's time zone.",
        "zh": "客户消息按星期和小时分布（客服所在时区）。",
    },
    "contacts": {
        "en": "New: the contact's first conversation ever is in the period. Returning: "
        "they had one before.",
        "zh": "新客户：第一次会话就在本期；老客户：之前就有过会话。",
    },
    "bot_confirmed": {
        "en": "Never handed to a person, and the customer thanked the bot after an answer.",
        "zh": "未转人工，且客户在机器人回答后表示了感谢。",
    },
    "bot_assumed": {
        "en": "Never handed to a person, the bot answered, and the customer did not write "
        "again (on any channel) within the return window. Not confirmed: reported apart.",
        "zh": "未转人工、机器人作答，且客户在回访窗口内没有再来（任何渠道）。未经确认，单独统计。",
    },
    "bot_pending": {
        "en": "Bot-only conversations too recent to know whether the customer comes back.",
        "zh": "仅机器人处理、时间太近还无法判断客户是否会再来的会话。",
    },
    "bot_unanswered": {
        "en": "Bot-only conversations where the bot never answered (greetings, the customer "
        "left during a clarification).",
        "zh": "仅机器人处理但机器人从未作答的会话（只有问候，或在澄清时客户离开）。",
    },
    "handoffs": {
        "en": "Conversations handed to people, by the reason of their first handoff.",
        "zh": "转人工的会话，按首次转人工的原因统计。",
    },
    "clarifications": {
        "en": "Clarifying questions the bot asked, and which choice customers took.",
        "zh": "机器人提出的澄清问题数，以及客户选择了哪个选项。",
    },
    "reopened": {
        "en": "Conversations reopened in the period: by an agent, by the customer writing "
        "again soon after the resolution, or by a reply to a follow-up.",
        "zh": "本期被重新打开的会话：客服重开、客户在解决后不久再次来信，或客户回复回访。",
    },
    "response_times": {
        "en": "First response, next response and resolution times (p50, p90) in business "
        "hours of each conversation's SLA policy; resolution includes time waiting on "
        "the customer.",
        "zh": "首次响应、后续响应和解决用时（p50、p90），按各会话时限规则的工作时间计算；"
        "解决用时包含等待客户的时间。",
    },
    "sla": {
        "en": "Promises met / (met + missed), per policy, metric and agent.",
        "zh": "时限达成率 = 达成 /（达成 + 超时），按规则、指标和客服统计。",
    },
    "backlog": {
        "en": "Conversations with people (handed off, not resolved) at the end of each day.",
        "zh": "每天结束时仍在人工处理中（已转人工、未解决）的会话数。",
    },
    "satisfaction": {
        "en": "Ratings 1-5 after a person's service: average, distribution, response rate "
        "(rated / asked), comments.",
        "zh": "人工服务后的 1-5 分评价：平均分、分布、回复率（已评 / 已邀请）及意见。",
    },
}


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0-1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(int(-(-share * len(ordered) // 1)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def _spread(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}


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

    window = return_hours * 3600  # seconds, as the rows' times are
    now_s = now.timestamp()
    days = _days(where.start, where.end, zone)

    async def read(query: Callable[[Repositories], Awaitable[_T]]) -> _T:
        found = await db.reading(query)
        advance()
        return found

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
    behind = report.behind

    def add(figure: str, key: str, conversation_id: int) -> None:
        behind.setdefault(figure, {}).setdefault(key, []).append(conversation_id)

    # -- volume ----------------------------------------------------------------------
    by_channel: Counter[str] = Counter()
    new: set[int] = set()
    returning: set[int] = set()
    for r in rows:
        by_channel[r.channel] += 1
        add("channel", r.channel, r.id)
        (new if r.first_of_contact else returning).add(r.contact_id)
    messages_by_channel: Counter[str] = Counter()
    heat: Counter[tuple[int, int]] = Counter()
    for channel, quarter, count in inbound:
        messages_by_channel[channel] += count
        local = datetime.fromtimestamp(quarter * 900, zone)
        heat[(local.weekday(), local.hour)] += count
    # A heatmap cell's conversations are read when asked for (``heatmap_conversations``).
    # Came back: wrote again (another conversation, any channel) within the window.
    returned = {
        r.id for r in rows if r.next_write is not None and r.next_write <= r.updated + window
    }

    # -- the bot ---------------------------------------------------------------------
    answered = {t.conversation_id for t in bot_turns if t.first_answer_id is not None}
    # Thanked the bot after one of its answers.
    thanked = {
        t.conversation_id
        for t in bot_turns
        if t.first_answer_id is not None
        and t.last_thanks_id is not None
        and t.last_thanks_id > t.first_answer_id
    }
    clarifications = sum(t.clarifications for t in bot_turns)
    outcomes: Counter[str] = Counter()
    for r in rows:
        if r.handed_off:
            outcome = "handed_off"
        elif r.id in thanked:
            outcome = "confirmed"
        elif r.id not in answered:
            outcome = "unanswered"
        elif r.updated + window > now_s:
            outcome = "pending"
        elif r.id in returned:
            outcome = "came_back"
        else:
            outcome = "assumed"
        outcomes[outcome] += 1
        add("bot_outcome", outcome, r.id)
    first_reason: dict[int, str] = {}
    reopened: set[int] = set()
    for conversation_id, reason in handoffs:
        first_reason.setdefault(conversation_id, reason)
        if reason in REOPEN_REASONS:
            reopened.add(conversation_id)
    reasons: Counter[str] = Counter(first_reason.values())
    for conversation_id, reason in first_reason.items():
        add("handoff_reason", reason, conversation_id)
    for conversation_id in reopened:
        add("reopened", "all", conversation_id)
    total = len(rows)

    # -- people ----------------------------------------------------------------------
    channel_of = {r.id: r.channel for r in rows}
    agent_of = {r.id: r.assignee_id for r in rows}

    def agent_label(agent_id: int | None) -> str:
        return "unassigned" if agent_id is None else agent_names.get(agent_id, f"#{agent_id}")

    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    sla: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for conversation_id, policy, metric, started, stopped, result, _late in timers:
        if stopped is not None:
            elapsed = policies.named(policy).calendar.between(started, stopped).total_seconds()
            for group, key in (
                ("all", "all"),
                ("by_channel", channel_of.get(conversation_id, "?")),
                ("by_agent", agent_label(agent_of.get(conversation_id))),
            ):
                times[metric][f"{group}:{key}"].append(elapsed)
        if result in ("met", "missed"):
            for group, key in (
                ("by_policy", policy),
                ("by_metric", metric),
                ("by_agent", agent_label(agent_of.get(conversation_id))),
            ):
                sla[group][key][result] += 1
            if result == "missed":
                add("sla_missed", policy, conversation_id)

    def grouped(metric: str) -> dict[str, Any]:
        data = times.get(metric, {})
        out: dict[str, Any] = {"all": _spread(data.get("all:all", []))}
        for group in ("by_channel", "by_agent"):
            out[group] = {
                key.split(":", 1)[1]: _spread(values)
                for key, values in sorted(data.items())
                if key.startswith(group + ":")
            }
        return out

    def rates(group: str) -> dict[str, Any]:
        return {
            key: {
                "met": c["met"],
                "missed": c["missed"],
                "rate": c["met"] / (c["met"] + c["missed"]) if c["met"] + c["missed"] else None,
            }
            for key, c in sorted(sla.get(group, {}).items())
        }

    # -- satisfaction ----------------------------------------------------------------
    asked = [r for r in rows if r.survey_asked]
    rated = [r for r in asked if r.csat_score is not None]
    scores = Counter(r.csat_score for r in rated)
    for r in rated:
        add("csat_score", str(r.csat_score), r.id)

    def csat_by(key_of: Callable[[Any], str]) -> dict[str, Any]:
        groups: dict[str, list[int]] = defaultdict(list)
        for r in rated:
            assert r.csat_score is not None
            groups[key_of(r)].append(r.csat_score)
        return {k: {"rated": len(v), "average": sum(v) / len(v)} for k, v in sorted(groups.items())}

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
        "volume": {
            "conversations": total,
            "by_channel": dict(sorted(by_channel.items())),
            "messages_by_channel": dict(sorted(messages_by_channel.items())),
            "heatmap": [[d, h, n] for (d, h), n in sorted(heat.items())],
            "contacts": {"new": len(new), "returning": len(returning - new)},
        },
        "bot": {
            "conversations": total,
            "outcomes": {
                k: outcomes.get(k, 0)
                for k in (
                    "confirmed",
                    "assumed",
                    "pending",
                    "came_back",
                    "unanswered",
                    "handed_off",
                )
            },
            "confirmed_rate": outcomes["confirmed"] / total if total else None,
            "assumed_rate": outcomes["assumed"] / total if total else None,
            "handoff_rate": outcomes["handed_off"] / total if total else None,
            "handoffs_by_reason": dict(reasons.most_common()),
            "clarifications": clarifications,
            "choices_taken": dict(Counter(choices).most_common(20)),
            "reopened": len(reopened),
        },
        "people": {
            "times": {m: grouped(m) for m in ("first_response", "next_response", "resolution")},
            "sla": {group: rates(group) for group in ("by_policy", "by_metric", "by_agent")},
            "backlog": [[day.isoformat(), n] for (day, _), n in zip(days, backlog, strict=True)],
        },
        "satisfaction": {
            "asked": len(asked),
            "rated": len(rated),
            "response_rate": len(rated) / len(asked) if asked else None,
            "average": sum(r.csat_score or 0 for r in rated) / len(rated) if rated else None,
            "distribution": {str(n): scores.get(n, 0) for n in range(1, 6)},
            "by_agent": csat_by(lambda r: agent_label(r.assignee_id)),
            "by_channel": csat_by(lambda r: r.channel),
            "comments": [
                {"conversation": r.id, "score": r.csat_score, "comment": r.csat_comment}
                for r in sorted(rated, key=lambda r: r.id, reverse=True)
                if r.csat_comment
            ][:100],
        },
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
