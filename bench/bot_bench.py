"""The bot's decision on the demo knowledge base: how long one ``Bot.decide`` takes.

    .venv/bin/python bench/bot_bench.py

One core, the demo knowledge base, every question of bench/data/demo-dev.csv in turn,
seven rounds; the median per decision, beside the floor of the same lexical work
(one rapidfuzz ``cdist`` of the folded question against every folded question)
measured in the same run. Details go to bench/results/bot.md; the last line is the
headline (target ≤ 0.3 ms).
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import Bot  # noqa: E402
from knowledge import Matcher, Normaliser, load_folder, load_synonyms  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def median_ms(action: Callable[[str], object], questions: list[str], rounds: int = 7) -> float:
    for question in questions:  # warm caches (OpenCC, regex) before timing
        action(question)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for question in questions:
            action(question)
        times.append((time.perf_counter() - started) / len(questions) * 1e3)
    return statistics.median(times)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    kb = ROOT / "knowledge" / "demo"
    normaliser = Normaliser(load_synonyms(kb))
    matcher = Matcher(load_folder(kb), normaliser=normaliser)
    bot = Bot(matcher=matcher)
    with (ROOT / "bench" / "data" / "demo-dev.csv").open(encoding="utf-8") as handle:
        questions = [row["query"] for row in csv.DictReader(handle)]
    folded = [normaliser.fold(q) for entry in load_folder(kb) for q in entry.questions]

    def floor(question: str) -> object:
        return process.cdist([normaliser.fold(question)], folded, scorer=fuzz.ratio)

    decide = median_ms(bot.decide, questions)
    bare = median_ms(floor, questions)
    lines = [
        "# Bot benchmark",
        "",
        f"`bench/bot_bench.py`, one core, Python {platform.python_version()}, the demo "
        f"knowledge base ({len(matcher)} entries, {len(folded)} questions), "
        f"{len(questions)} questions of bench/data/demo-dev.csv, median of 7 rounds.",
        "",
        "| per question | ms | × floor |",
        "|---|---|---|",
        f"| `Bot.decide` (match, signals, decision) | {decide:.3f} | {decide / bare:.1f} |",
        f"| floor: fold + one `cdist(fuzz.ratio)` | {bare:.3f} | 1.0 |",
        "",
        "Target: decide ≤ 0.3 ms.",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bot.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"bot_decide_median_ms: {decide:.3f}")


if __name__ == "__main__":
    main()
