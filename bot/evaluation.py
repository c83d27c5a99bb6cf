"""How well the front line does on labelled questions, and which thresholds to use.

A labelled file is a CSV with the header ``query,expected`` (more columns are
kept as groups, e.g. ``script``); ``expected`` is an entry id, or ``none`` when
the knowledge base cannot answer the query.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.policy import Bot, BotSettings, DecisionKind, ScoredCandidate, choose

__all__ = ["LabelledQuery", "Report", "evaluate", "read_labelled", "tune"]


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    query: str
    expected: str | None
    group: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """Rates over the labelled queries.

    ``in_scope_accuracy``: answerable queries answered with the right entry.
    ``wrong_answer_rate``: answerable queries answered with a wrong entry.
    ``clarify_rate``: all queries met with choices (``clarify_hit_rate``: answerable
    ones whose entry was among them). ``oos_recall``: unanswerable queries handed
    to a person. ``oos_answered``: unanswerable queries the bot answered anyway.
    """

    queries: int
    answerable: int
    unanswerable: int
    in_scope_accuracy: float
    wrong_answer_rate: float
    clarify_rate: float
    clarify_hit_rate: float
    oos_recall: float
    oos_answered: float
    thresholds: dict[str, float]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_labelled(path: Path) -> list[LabelledQuery]:
    """Read a labelled CSV; a malformed file raises ValueError naming the line."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "query" not in fields or "expected" not in fields:
            raise ValueError(f"{path}: the header must include query,expected")
        group_field = next((f for f in fields if f not in ("query", "expected")), None)
        rows = []
        for line, row in enumerate(reader, start=2):
            query, expected = (row.get("query") or "").strip(), (row.get("expected") or "").strip()
            if not query or not expected:
                raise ValueError(f"{path}:{line}: query and expected must not be empty")
            rows.append(
                LabelledQuery(
                    query=query,
                    expected=None if expected.lower() == "none" else expected,
                    group=(row.get(group_field) or "") if group_field else "",
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class _Outcome:
    expected: str | None
    group: str
    kind: DecisionKind
    entry: str | None
    choices: tuple[str, ...]


def _rates(outcomes: Sequence[_Outcome]) -> dict[str, float]:
    answerable = [o for o in outcomes if o.expected is not None]
    unanswerable = [o for o in outcomes if o.expected is None]

    def share(items: Sequence[_Outcome], total: int) -> float:
        return round(len(items) / total, 4) if total else 0.0

    return {
        "in_scope_accuracy": share(
            [o for o in answerable if o.kind is DecisionKind.ANSWER and o.entry == o.expected],
            len(answerable),
        ),
        "wrong_answer_rate": share(
            [o for o in answerable if o.kind is DecisionKind.ANSWER and o.entry != o.expected],
            len(answerable),
        ),
        "clarify_rate": share(
            [o for o in outcomes if o.kind is DecisionKind.CLARIFY], len(outcomes)
        ),
        "clarify_hit_rate": share(
            [o for o in answerable if o.kind is DecisionKind.CLARIFY and o.expected in o.choices],
            len(answerable),
        ),
        "oos_recall": share(
            [o for o in unanswerable if o.kind is DecisionKind.HANDOFF], len(unanswerable)
        ),
        "oos_answered": share(
            [o for o in unanswerable if o.kind is DecisionKind.ANSWER], len(unanswerable)
        ),
    }


def evaluate(bot: Bot, queries: Sequence[LabelledQuery]) -> Report:
    """Run every query through the whole bot (signals included) with its settings."""
    outcomes = []
    for item in queries:
        decision = bot.decide(item.query)
        outcomes.append(
            _Outcome(
                expected=item.expected,
                group=item.group,
                kind=decision.kind,
                entry=decision.entry_id,
                choices=tuple(c.id for c in decision.choices),
            )
        )
    groups = {
        group: _rates([o for o in outcomes if o.group == group])
        for group in sorted({o.group for o in outcomes if o.group})
    }
    s = bot.settings
    return Report(
        queries=len(outcomes),
        answerable=sum(1 for o in outcomes if o.expected is not None),
        unanswerable=sum(1 for o in outcomes if o.expected is None),
        thresholds={"answer": s.answer_threshold, "clarify": s.clarify_threshold},
        groups=groups,
        **_rates(outcomes),
    )


def tune(
    bot: Bot,
    queries: Sequence[LabelledQuery],
    *,
    max_wrong: float = 0.02,
    min_oos_recall: float = 0.9,
) -> tuple[BotSettings, bool]:
    """The thresholds with the most right answers within both targets.

    Matches every query once, then tries every pair of thresholds on whole points.
    Returns the settings and whether the targets were met (if not: the settings
    with the fewest wrong answers).
    """
    scored = [
        (
            item,
            tuple(
                ScoredCandidate(id=c.entry_id, score=c.score, question=c.question)
                for c in bot.matcher.match(item.query, limit=max(bot.settings.max_choices, 5))
            ),
        )
        for item in queries
    ]
    best: tuple[tuple[float, ...], BotSettings] | None = None
    fallback: tuple[tuple[float, ...], BotSettings] | None = None
    for answer in range(40, 101):
        for clarify in range(30, answer + 1):
            settings = replace(
                bot.settings, answer_threshold=float(answer), clarify_threshold=float(clarify)
            )
            outcomes = []
            for item, candidates in scored:
                kind, chosen = choose(candidates, settings)
                outcomes.append(
                    _Outcome(
                        expected=item.expected,
                        group=item.group,
                        kind=kind,
                        entry=chosen[0].id if kind is DecisionKind.ANSWER else None,
                        choices=tuple(c.id for c in chosen),
                    )
                )
            rates = _rates(outcomes)
            key = (rates["in_scope_accuracy"], rates["clarify_hit_rate"], rates["oos_recall"])
            within = (
                rates["wrong_answer_rate"] <= max_wrong and rates["oos_recall"] >= min_oos_recall
            )
            if within and (best is None or key > best[0]):
                best = (key, settings)
            fallback_key = (-rates["wrong_answer_rate"], *key)
            if fallback is None or fallback_key > fallback[0]:
                fallback = (fallback_key, settings)
    if best is not None:
        return best[1], True
    assert fallback is not None
    return fallback[1], False
