"""How well the front line does on labelled questions, and which thresholds to use.

A labelled file is a CSV with the header ``query,expected`` (more columns are
kept as groups, e.g. ``script``); ``expected`` is an entry id, or ``none`` when
the knowledge base cannot answer the query.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.policy import Bot, BotSettings, DecisionKind, ScoredCandidate, choose
from knowledge import chinese_script

__all__ = [
    "MIN_ANSWERABLE",
    "MIN_UNANSWERABLE",
    "LabelledQuery",
    "Report",
    "evaluate",
    "read_labelled",
    "sample_warnings",
    "script_of",
    "tune",
]

# Called with (done, total) as the queries are matched.
Progress = Callable[[int, int], None]
# Below these, a rate measured on the sample is too uncertain to choose thresholds by
# (with 100 answerable questions, 95% of the time a true 90% reads 84-94%).
MIN_ANSWERABLE = 100
MIN_UNANSWERABLE = 30


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
    # The same rates per script of the query: hans (simplified), hant (traditional),
    # latin; with how many queries of each (``queries``, ``answerable``).
    scripts: dict[str, dict[str, float]] = field(default_factory=dict)

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


def script_of(text: str) -> str:
    """``hans``, ``hant`` or ``latin``: how a query is written (for per-script rates)."""
    script = chinese_script(text)
    return "latin" if script is None else script.split("-")[0]


def _margin(successes: float, total: int) -> float:
    """Half the width of the 95% Wilson interval of a rate, in points of 1."""
    if total == 0:
        return 1.0
    z = 1.96
    p = successes / total
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return spread / (1 + z * z / total)


def sample_warnings(report: Report) -> list[str]:
    """Why the rates of ``report`` are not to be trusted yet (too few questions)."""
    warnings = []
    for count, minimum, what, rate in (
        (report.answerable, MIN_ANSWERABLE, "answerable", report.in_scope_accuracy),
        (report.unanswerable, MIN_UNANSWERABLE, "unanswerable", report.oos_recall),
    ):
        if count < minimum:
            margin = _margin(rate * count, count)
            warnings.append(
                f"only {count} {what} questions (want {minimum}+): a rate measured on them "
                f"is uncertain by ±{margin:.0%}; label more before trusting or tuning"
            )
    for script, rates in report.scripts.items():
        if 0 < rates["answerable"] < 30:
            warnings.append(
                f"only {rates['answerable']:.0f} answerable {script} questions: its rates "
                "are a rough guide"
            )
    return warnings


def evaluate(
    bot: Bot, queries: Sequence[LabelledQuery], *, progress: Progress | None = None
) -> Report:
    """Run every query through the whole bot (signals included) with its settings."""
    outcomes = []
    scripts: dict[str, list[_Outcome]] = {}
    for done, item in enumerate(queries, start=1):
        if progress is not None and (done % 50 == 0 or done == len(queries)):
            progress(done, len(queries))
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
        scripts.setdefault(script_of(item.query), []).append(outcomes[-1])
    groups = {
        group: _rates([o for o in outcomes if o.group == group])
        for group in sorted({o.group for o in outcomes if o.group})
    }
    s = bot.settings
    return Report(
        queries=len(outcomes),
        answerable=sum(1 for o in outcomes if o.expected is not None),
        unanswerable=sum(1 for o in outcomes if o.expected is None),
        thresholds={
            "answer": s.answer_threshold,
            "clarify": s.clarify_threshold,
            "margin": s.clarify_margin,
        },
        groups=groups,
        scripts={
            script: {
                **_rates(found),
                "queries": len(found),
                "answerable": sum(1 for o in found if o.expected is not None),
            }
            for script, found in sorted(scripts.items())
        },
        **_rates(outcomes),
    )


# Leads over the runner-up that tuning tries (calibrated points).
MARGINS = (0.0, 2.0, 4.0, 6.0, 8.0, 12.0)


def tune(
    bot: Bot,
    queries: Sequence[LabelledQuery],
    *,
    max_wrong: float = 0.02,
    min_oos_recall: float = 0.9,
    progress: Progress | None = None,
) -> tuple[BotSettings, bool]:
    """The thresholds and margin with the most right answers within both targets.

    Matches every query once, then tries the answer and clarify thresholds on even
    points with each margin in :data:`MARGINS`, and refines the best on whole points.
    Returns the settings and whether the targets were met (if not: the settings
    with the fewest wrong answers).
    """
    limit = max(bot.settings.max_choices, 5)
    texts = [item.query for item in queries]
    matched = []
    for start in range(0, len(texts), 200):
        matched += bot.matcher.match_many(texts[start : start + 200], limit=limit)
        if progress is not None:
            progress(min(start + 200, len(texts)), len(texts))
    scored = [
        (
            item,
            tuple(ScoredCandidate(id=c.entry_id, score=c.score, question=c.question) for c in cs),
        )
        for item, cs in zip(queries, matched, strict=True)
    ]

    def key_of(settings: BotSettings) -> tuple[bool, tuple[float, ...]]:
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
        within = rates["wrong_answer_rate"] <= max_wrong and rates["oos_recall"] >= min_oos_recall
        key = (rates["in_scope_accuracy"], rates["clarify_hit_rate"], rates["oos_recall"])
        # Within the targets: the most right answers; else: the fewest wrong ones.
        return within, key if within else (-rates["wrong_answer_rate"], *key)

    def grid(answers: range, margins: Sequence[float], width: int, step: int) -> list[BotSettings]:
        return [
            replace(
                bot.settings,
                answer_threshold=float(answer),
                clarify_threshold=float(clarify),
                clarify_margin=margin,
            )
            for margin in margins
            for answer in answers
            for clarify in range(max(0, answer - width), answer + 1, step)
        ]

    def best_of(
        candidates: Sequence[BotSettings],
    ) -> tuple[tuple[bool, tuple[float, ...]], BotSettings]:
        return max(((key_of(s), s) for s in candidates), key=lambda pair: pair[0])

    key, settings = best_of(grid(range(0, 101, 2), MARGINS, 30, 2))
    a = int(settings.answer_threshold)
    fine = [
        s
        for s in grid(range(max(0, a - 2), min(100, a + 2) + 1), [settings.clarify_margin], 32, 1)
        if abs(s.clarify_threshold - settings.clarify_threshold) <= 2
    ]
    key, settings = max([(key, settings), best_of(fine)], key=lambda pair: pair[0])
    return settings, key[0]
