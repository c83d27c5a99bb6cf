"""The bot's decision as shipped (characters, words and meaning): how long one
``Bot.decide`` takes, and what a large knowledge base costs.

    .venv/bin/python bench/bot_bench.py [--quick]

One core. Part 1, the demo knowledge base read as ``config.yaml`` ships it (Chinese by
meaning with multilingual-e5-small): every question of bench/data/demo-dev.csv timed
one by one over five rounds; p50 and p99 per decision beside two floors measured in
the same run — the model's own work (embedding the question once) and the lexical
floor (fold + one rapidfuzz ``cdist`` against every question).

Part 2, 10,000 Chinese entries (three questions each, made from SMP2017 sentences
and the demo knowledge base's words; --quick: 2,000): the first fit (every question
embedded and the models fitted), a reload with the cache warm (what a restart or
"Save as FAQ" costs), the resident memory that reload adds, and p50/p99 per decision
over 300 SMP2017 sentences. Details go to bench/results/bot.md and bot.json; the last
line is the headline.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import Bot  # noqa: E402
from knowledge import FaqEntry, Matcher, Normaliser, load_folder, load_synonyms  # noqa: E402
from knowledge.fitted import cached_matcher  # noqa: E402
from knowledge.meaning import load_e5  # noqa: E402
from router.config import load_config  # noqa: E402
from router.front_line import build_bot  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SHARED = ROOT.parent / "shared" / "data"


def timings_ms(
    action: Callable[[str], object], questions: Sequence[str], rounds: int
) -> list[float]:
    for question in questions:  # warm caches (OpenCC, regex, the engine) first
        action(question)
    out = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            action(question)
            out.append((time.perf_counter() - started) * 1e3)
    return sorted(out)


def pct(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def demo(rounds: int) -> dict[str, Any]:
    config = load_config(ROOT / "config.yaml")
    with tempfile.TemporaryDirectory() as folder:
        config = config.model_copy(
            update={"knowledge": config.knowledge.model_copy(update={"cache_dir": Path(folder)})}
        )
        bot = build_bot(config)
    matcher = bot.matcher
    normaliser = matcher.normaliser
    with (ROOT / "bench" / "data" / "demo-dev.csv").open(encoding="utf-8") as handle:
        questions = [row["query"] for row in csv.DictReader(handle)]
    folded = [normaliser.fold(q) for e in matcher.entries for q in e.questions]
    encoder = load_e5(None)
    assert encoder is not None, "the meaning model cannot load on this machine"

    def lexical_floor(question: str) -> object:
        return process.cdist([normaliser.fold(question)], folded, scorer=fuzz.ratio)

    def model_floor(question: str) -> object:
        return encoder.encode([normaliser.fold(question)])

    decide = timings_ms(bot.decide, questions, rounds)
    model = timings_ms(model_floor, questions, rounds)
    lexical = timings_ms(lexical_floor, questions, rounds)
    return {
        "entries": len(matcher),
        "questions": len(folded),
        "asked": len(questions),
        "reads_meaning": matcher.reads_meaning,
        "decide": {"p50_ms": pct(decide, 0.5), "p99_ms": pct(decide, 0.99)},
        "model_floor": {"p50_ms": pct(model, 0.5), "p99_ms": pct(model, 0.99)},
        "lexical_floor": {"p50_ms": pct(lexical, 0.5), "p99_ms": pct(lexical, 0.99)},
    }


def chinese_entries(size: int) -> tuple[list[FaqEntry], list[str]]:
    rows = (SHARED / "smp2017-zh" / "data.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [r.split("\t")[0] for r in rows if "\t" in r and r.split("\t")[0]]
    demo_kb = ROOT / "knowledge" / "demo"
    words = sorted(
        {q[i : i + 2] for e in load_folder(demo_kb) for q in e.questions for i in range(len(q) - 1)}
    )
    rng = random.Random(1)
    entries = [
        FaqEntry(
            id=f"e{n}",
            questions=tuple(
                f"{sentences[(n * 3 + j) % len(sentences)]}{rng.choice(words)}" for j in range(3)
            ),
            answers=(("zh", "好的"),),
        )
        for n in range(size)
    ]
    asked = [sentences[(n * 7919) % len(sentences)] for n in range(300)]
    return entries, asked


def large(size: int) -> dict[str, Any]:
    entries, asked = chinese_entries(size)
    normaliser = Normaliser(load_synonyms(ROOT / "knowledge" / "demo"))
    process_ = psutil.Process()
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        encoder = load_e5(cache)

        def fit() -> Matcher:
            return Matcher(entries, normaliser=normaliser, chinese_encoder=encoder)

        started = time.perf_counter()
        first = cached_matcher(
            entries, {}, folder=cache, build=fit, encoder=None, chinese_encoder=encoder
        )
        first_fit = time.perf_counter() - started
        del first
        gc.collect()
        before = process_.memory_info().rss
        started = time.perf_counter()
        matcher = cached_matcher(
            entries, {}, folder=cache, build=fit, encoder=None, chinese_encoder=encoder
        )
        reload = time.perf_counter() - started
        grown = process_.memory_info().rss - before
    bot = Bot(matcher=matcher)
    decide = timings_ms(bot.decide, asked, 1)
    return {
        "entries": size,
        "first_fit_s": first_fit,
        "warm_reload_s": reload,
        "reload_memory_mb": grown / 1024**2,
        "decide": {"p50_ms": pct(decide, 0.5), "p99_ms": pct(decide, 0.99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2,000 entries in part 2")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    small = demo(rounds=5)
    big = large(2_000 if args.quick else 10_000)
    d, m, x = small["decide"], small["model_floor"], small["lexical_floor"]
    lines = [
        "# Bot benchmark",
        "",
        f"`bench/bot_bench.py`, one core, Python {platform.python_version()}. Part 1: the demo "
        f"knowledge base as config.yaml ships it ({small['entries']} entries, "
        f"{small['questions']} questions; read by meaning: {small['reads_meaning']}), "
        f"{small['asked']} questions of bench/data/demo-dev.csv, each timed, 5 rounds.",
        "",
        "| per decision | p50 ms | p99 ms | p50 × model floor |",
        "|---|---|---|---|",
        f"| `Bot.decide` | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} "
        f"| {d['p50_ms'] / m['p50_ms']:.1f} |",
        f"| floor: embed the question once (e5) | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | 1.0 |",
        f"| floor: fold + one `cdist(fuzz.ratio)` | {x['p50_ms']:.3f} | {x['p99_ms']:.3f} "
        f"| {x['p50_ms'] / m['p50_ms']:.2f} |",
        "",
        "Targets: p50 ≤ 8 ms, p99 ≤ 20 ms.",
        "",
        f"Part 2: {big['entries']:,} Chinese entries (3 questions each, SMP2017 sentences + "
        "a demo word), read by meaning.",
        "",
        "| first fit | reload, cache warm | memory the reload adds | decide p50 | decide p99 |",
        "|---|---|---|---|---|",
        f"| {big['first_fit_s']:.1f} s | {big['warm_reload_s']:.2f} s "
        f"| {big['reload_memory_mb']:.0f} MB | {big['decide']['p50_ms']:.2f} ms "
        f"| {big['decide']['p99_ms']:.2f} ms |",
        "",
        "Targets at 10k: reload ≤ 5 s with a warm cache, memory growth ≤ 200 MB, p99 ≤ 30 ms.",
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bot.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "bot.json").write_text(
        json.dumps({"demo": small, "large": big}, indent=2), encoding="utf-8"
    )
    print("\n".join(lines))
    print(f"bot_decide_p99_ms: {d['p99_ms']:.2f}")


if __name__ == "__main__":
    main()
