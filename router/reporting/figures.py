"""The report's figures from the rows ``build_report`` read: volume, the bot, people
(response times, promises kept) and satisfaction. Each records the conversations
behind its figures through ``add(figure, key, conversation_id)``."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from router.desk.sla import SlaPolicies

__all__ = ["bot", "people", "percentile", "satisfaction", "volume"]

Add = Callable[[str, str, int], None]
REOPEN_REASONS = {"reopened", "reopened_by_customer", "follow_up_reply"}


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0-1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(int(-(-share * len(ordered) // 1)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def _spread(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9)}


def volume(rows: Sequence[Any], inbound: Iterable[Any], zone: ZoneInfo, add: Add) -> dict[str, Any]:
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
    return {
        "conversations": len(rows),
        "by_channel": dict(sorted(by_channel.items())),
        "messages_by_channel": dict(sorted(messages_by_channel.items())),
        "heatmap": [[d, h, n] for (d, h), n in sorted(heat.items())],
        "contacts": {"new": len(new), "returning": len(returning - new)},
    }


def _outcome(r: Any, answered: set[int], thanked: set[int], now: float, window: float) -> str:
    if r.handed_off:
        return "handed_off"
    if r.id in thanked:
        return "confirmed"
    if r.id not in answered:
        return "unanswered"
    if r.updated + window > now:
        return "pending"
    # Came back: wrote again (another conversation, any channel) within the window.
    if r.next_write is not None and r.next_write <= r.updated + window:
        return "came_back"
    return "assumed"


def bot(
    rows: Sequence[Any],
    bot_turns: Sequence[Any],
    choices: Iterable[str],
    handoffs: Iterable[tuple[int, str]],
    *,
    now: float,
    window: float,
    add: Add,
) -> dict[str, Any]:
    answered = {t.conversation_id for t in bot_turns if t.first_answer_id is not None}
    # Thanked the bot after one of its answers.
    thanked = {
        t.conversation_id
        for t in bot_turns
        if t.first_answer_id is not None
        and t.last_thanks_id is not None
        and t.last_thanks_id > t.first_answer_id
    }
    outcomes: Counter[str] = Counter()
    for r in rows:
        outcome = _outcome(r, answered, thanked, now, window)
        outcomes[outcome] += 1
        add("bot_outcome", outcome, r.id)
    first_reason: dict[int, str] = {}
    reopened: set[int] = set()
    for conversation_id, reason in handoffs:
        first_reason.setdefault(conversation_id, reason)
        if reason in REOPEN_REASONS:
            reopened.add(conversation_id)
    for conversation_id, reason in first_reason.items():
        add("handoff_reason", reason, conversation_id)
    for conversation_id in reopened:
        add("reopened", "all", conversation_id)
    total = len(rows)
    kinds = ("confirmed", "assumed", "pending", "came_back", "unanswered", "handed_off")
    return {
        "conversations": total,
        "outcomes": {k: outcomes.get(k, 0) for k in kinds},
        "confirmed_rate": outcomes["confirmed"] / total if total else None,
        "assumed_rate": outcomes["assumed"] / total if total else None,
        "handoff_rate": outcomes["handed_off"] / total if total else None,
        "handoffs_by_reason": dict(Counter(first_reason.values()).most_common()),
        "clarifications": sum(t.clarifications for t in bot_turns),
        "choices_taken": dict(Counter(choices).most_common(20)),
        "reopened": len(reopened),
    }


def people(
    rows: Sequence[Any],
    timers: Iterable[Any],
    policies: SlaPolicies,
    agent_label: Callable[[int | None], str],
    add: Add,
) -> dict[str, Any]:
    """Response and resolution times in each policy's business hours, and promises kept."""
    channel_of = {r.id: r.channel for r in rows}
    agent_of = {r.id: r.assignee_id for r in rows}
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    sla: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for conversation_id, policy, metric, started, stopped, result, _late in timers:
        agent = agent_label(agent_of.get(conversation_id))
        if stopped is not None:
            elapsed = policies.named(policy).calendar.between(started, stopped).total_seconds()
            for group, key in (
                ("all", "all"),
                ("by_channel", channel_of.get(conversation_id, "?")),
                ("by_agent", agent),
            ):
                times[metric][f"{group}:{key}"].append(elapsed)
        if result in ("met", "missed"):
            for group, key in (("by_policy", policy), ("by_metric", metric), ("by_agent", agent)):
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

    return {
        "times": {m: grouped(m) for m in ("first_response", "next_response", "resolution")},
        "sla": {group: rates(group) for group in ("by_policy", "by_metric", "by_agent")},
    }


def satisfaction(
    rows: Sequence[Any], agent_label: Callable[[int | None], str], add: Add
) -> dict[str, Any]:
    asked = [r for r in rows if r.survey_asked]
    rated = [r for r in asked if r.csat_score is not None]
    scores = Counter(r.csat_score for r in rated)
    for r in rated:
        add("csat_score", str(r.csat_score), r.id)

    def csat_by(key_of: Callable[[Any], str]) -> dict[str, Any]:
        groups: dict[str, list[int]] = defaultdict(list)
        for r in rated:
            groups[key_of(r)].append(r.csat_score)
        return {k: {"rated": len(v), "average": sum(v) / len(v)} for k, v in sorted(groups.items())}

    return {
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
    }
