"""Knowledge-base benchmark: the matcher against the baselines, on public data, in one run.

    .venv/bin/python bench/kb_bench.py [--quick]

* CLINC150 with K = 1, 5, 10 and all questions per entry: thresholds chosen on
  val + oos_val, reported on test + oos_test (in-scope accuracy, a handoff counting
  as wrong; out-of-scope recall) — at the threshold that keeps 85% out-of-scope
  recall on val, and at the one that maximises accuracy + recall on val.
* BANKING77-OOS: threshold chosen on valid for 85% in-domain out-of-scope recall;
  in-domain and off-topic out-of-scope recall reported apart.
* SMP2017 Chinese (the protocol of its README): top-1 accuracy and AUROC.
* The demo knowledge base with bench/data/demo-dev.csv, through the whole bot.
* Match latency p50/p99 at 1k, 10k and 100k entries; build time and memory at 100k.

Baselines on the same data: rapidfuzz token_set_ratio best match, TF-IDF character
2–4-grams best match. Results: bench/results/kb.md and kb.json; the last line is
the headline.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"

from bot.evaluation import evaluate, read_labelled  # noqa: E402
from knowledge import FaqEntry, Matcher, Normaliser, load_synonyms  # noqa: E402
from knowledge.meaning import load_e5  # noqa: E402
from knowledge.semantic import ModelNotInstalled, find_model, load_encoder  # noqa: E402

# Question embeddings between runs (bench/.peers is ignored by git).
CACHE = ROOT / "bench" / ".peers" / "embeddings"

try:
    find_model()
    SEMANTIC = True
except ModelNotInstalled:
    SEMANTIC = False
# The shipped answer threshold: on calibrated scores it should mean about the same
# on every knowledge base (the "calibration" tables check that).
SHIPPED_THRESHOLD = 22.0
from router.config import load_config  # noqa: E402
from router.front_line import build_bot  # noqa: E402

Entries = list[tuple[str, list[str]]]
# A method builds an index over entries and returns (best entry id, score) per query.
Method = Callable[[Entries], Callable[[Sequence[str]], tuple[list[str], np.ndarray]]]


def _relaydesk(
    entries: Entries, *, semantic: bool
) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    matcher = Matcher(
        [FaqEntry(id=i, questions=tuple(qs), answers=(("en", i),)) for i, qs in entries],
        encoder=load_encoder() if semantic else None,
        # As shipped: Chinese read by meaning too (no effect on English data sets).
        chinese_encoder=load_e5(CACHE),
    )

    def top(queries: Sequence[str]) -> tuple[list[str], np.ndarray]:
        found = matcher.match_many(queries, limit=1)
        ids = [f[0].entry_id if f else "" for f in found]
        return ids, np.asarray([f[0].score if f else 0.0 for f in found])

    return top


def relaydesk(entries: Entries) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    return _relaydesk(entries, semantic=False)


def relaydesk_semantic(entries: Entries) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    return _relaydesk(entries, semantic=True)


def token_set(entries: Entries) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    questions = [q for _, qs in entries for q in qs]
    owners = [i for i, qs in entries for _ in qs]

    def top(queries: Sequence[str]) -> tuple[list[str], np.ndarray]:
        ids, scores = [], []
        for query in queries:
            _, score, index = process.extractOne(query, questions, scorer=fuzz.token_set_ratio)
            ids.append(owners[index])
            scores.append(score)
        return ids, np.asarray(scores)

    return top


def tfidf_char(entries: Entries) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    questions = [q for _, qs in entries for q in qs]
    owners = [i for i, qs in entries for _ in qs]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    index = vectorizer.fit_transform(questions)

    def top(queries: Sequence[str]) -> tuple[list[str], np.ndarray]:
        similarity = (vectorizer.transform(queries) @ index.T).toarray()
        best = similarity.argmax(axis=1)
        return [owners[b] for b in best], similarity.max(axis=1) * 100

    return top


METHODS: dict[str, Method] = {
    "RelayDesk matcher": relaydesk,
    "RelayDesk + semantic": relaydesk_semantic,
    "rapidfuzz token_set_ratio": token_set,
    "TF-IDF char 2-4": tfidf_char,
}


def _at(
    ids: list[str], scores: np.ndarray, gold: list[str], threshold: float
) -> tuple[float, float]:
    gold_array, ids_array = np.asarray(gold), np.asarray(ids)
    inside = gold_array != "oos"
    answered = scores >= threshold
    accuracy = float((answered & (ids_array == gold_array))[inside].mean())
    recall = float((~answered)[~inside].mean()) if (~inside).any() else float("nan")
    return accuracy, recall


def _thresholds(scores: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([scores, [scores.max() + 1]]))


def choose_threshold(
    ids: list[str], scores: np.ndarray, gold: list[str], *, min_recall: float | None
) -> float:
    best, best_key = 0.0, -1.0
    for threshold in _thresholds(scores):
        accuracy, recall = _at(ids, scores, gold, threshold)
        if min_recall is not None:
            key = accuracy if recall >= min_recall else -1.0
        else:
            key = accuracy + recall
        if key > best_key:
            best, best_key = float(threshold), key
    return best


# How a threshold is chosen on val (CLINC150's oos_val holds only 100 queries, and
# its test out-of-scope queries are harder: 85% recall on val gives less on test).
RULES: tuple[tuple[str, float | None], ...] = (
    ("recall>=85% on val", 0.85),
    ("recall>=90% on val", 0.90),
    ("max acc+recall", None),
)


def _fixed(
    ids: list[str], scores: np.ndarray, gold: list[str], threshold: float
) -> dict[str, float]:
    """Accuracy, wrong answers (share of in-scope queries) and oos recall at ``threshold``."""
    accuracy, recall = _at(ids, scores, gold, threshold)
    g, i = np.asarray(gold), np.asarray(ids)
    inside = g != "oos"
    wrong = float(((scores >= threshold) & (i != g))[inside].mean())
    return {"accuracy": accuracy, "wrong": wrong, "oos_recall": recall}


def clinc(k_values: Sequence[int | None], quick: bool) -> dict[str, Any]:
    methods = {n: m for n, m in METHODS.items() if SEMANTIC or n != "RelayDesk + semantic"}
    data = json.loads((SHARED / "clinc150" / "data_full.json").read_text())
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    val = data["val"] + data["oos_val"]
    test = data["test"] + data["oos_test"]
    if quick:
        val, test = val[::4], test[::4]
    results: dict[str, Any] = {}
    for k in k_values:
        entries = [(i, qs[:k] if k else qs) for i, qs in sorted(by_intent.items())]
        label = f"K={k or 'all'}"
        results[label] = {}
        for name, method in methods.items():
            top = method(entries)
            v_ids, v_scores = top([t for t, _ in val])
            t_ids, t_scores = top([t for t, _ in test])
            v_gold, t_gold = [g for _, g in val], [g for _, g in test]
            row = {}
            for rule, min_recall in RULES:
                threshold = choose_threshold(v_ids, v_scores, v_gold, min_recall=min_recall)
                accuracy, recall = _at(t_ids, t_scores, t_gold, threshold)
                row[rule] = {"accuracy": accuracy, "oos_recall": recall, "threshold": threshold}
            if name.startswith("RelayDesk"):
                row["shipped"] = _fixed(t_ids, t_scores, t_gold, SHIPPED_THRESHOLD)
            # Not the protocol: the threshold set on test itself, to show what the
            # method can do at 85% recall when the val split misjudges the threshold.
            frontier = choose_threshold(t_ids, t_scores, t_gold, min_recall=0.85)
            accuracy, recall = _at(t_ids, t_scores, t_gold, frontier)
            row["frontier"] = {"accuracy": accuracy, "oos_recall": recall, "threshold": frontier}
            results[label][name] = row
            print(f"CLINC150 {label} {name}: {row}", file=sys.stderr)
    return results


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def banking() -> dict[str, Any]:
    base = SHARED / "banking77-oos"
    train = list(
        zip(_lines(base / "train" / "seq.in"), _lines(base / "train" / "label"), strict=False)
    )
    by_intent: dict[str, list[str]] = {}
    for text, intent in train:
        by_intent.setdefault(intent, []).append(text)
    entries = sorted(by_intent.items())

    def split(name: str) -> list[tuple[str, str]]:
        rows = list(
            zip(_lines(base / name / "seq.in"), _lines(base / name / "label"), strict=False)
        )
        return rows

    valid = split("valid") + split("id-oos/valid")
    test_in, test_id, test_ood = split("test"), split("id-oos/test"), split("ood-oos/test")
    results: dict[str, Any] = {}
    methods = {n: m for n, m in METHODS.items() if SEMANTIC or n != "RelayDesk + semantic"}
    for name, method in methods.items():
        top = method(entries)
        v_ids, v_scores = top([t for t, _ in valid])
        threshold = choose_threshold(v_ids, v_scores, [g for _, g in valid], min_recall=0.85)
        row = {}
        for label, rows in (("in-domain oos", test_id), ("off-topic oos", test_ood)):
            ids, scores = top([t for t, _ in test_in + rows])
            accuracy, recall = _at(ids, scores, [g for _, g in test_in + rows], threshold)
            row[label] = recall
            row["accuracy"] = accuracy
            if name.startswith("RelayDesk"):
                row[f"shipped {label}"] = _fixed(
                    ids, scores, [g for _, g in test_in + rows], SHIPPED_THRESHOLD
                )
        results[name] = row
        print(f"BANKING77-OOS {name}: {row}", file=sys.stderr)
    return results


def smp() -> dict[str, Any]:
    rows = [line.split("\t") for line in _lines(SHARED / "smp2017-zh" / "data.tsv")[1:]]
    rows = [(s, t) for s, t in rows if s and t]
    out_domains = {"chat", "bus", "epg", "map", "match", "news", "train", "video"}
    rng = random.Random(0)
    kb: dict[str, list[str]] = {}
    val_rows: list[tuple[str, str]] = []
    test_rows: list[tuple[str, str]] = []
    by_domain: dict[str, list[str]] = {}
    for sentence, tag in rows:
        by_domain.setdefault(tag, []).append(sentence)
    oos: list[str] = []
    for tag, sentences in sorted(by_domain.items()):
        rng.shuffle(sentences)
        if tag in out_domains:
            oos.extend(sentences)
            continue
        cut1, cut2 = int(len(sentences) * 0.6), int(len(sentences) * 0.8)
        kb[tag] = sentences[:cut1]
        val_rows += [(s, tag) for s in sentences[cut1:cut2]]
        test_rows += [(s, tag) for s in sentences[cut2:]]
    rng.shuffle(oos)
    test_rows += [(s, "oos") for s in oos[len(oos) // 2 :]]
    del val_rows  # thresholds are not needed for top-1 and AUROC
    entries = sorted(kb.items())
    from sklearn.metrics import roc_auc_score

    methods: dict[str, Method] = {
        **{n: m for n, m in METHODS.items() if n != "RelayDesk + semantic"},
        "rapidfuzz ratio on characters": _ratio,
    }
    results: dict[str, Any] = {}
    for name, method in methods.items():
        ids, scores = method(entries)([s for s, _ in test_rows])
        gold = np.asarray([g for _, g in test_rows])
        inside = gold != "oos"
        top1 = float((np.asarray(ids) == gold)[inside].mean())
        auroc = float(roc_auc_score(inside.astype(int), scores))
        results[name] = {"top1": top1, "auroc": auroc}
        if name.startswith("RelayDesk"):
            results[name]["shipped"] = _fixed(ids, scores, list(gold), SHIPPED_THRESHOLD)
        print(f"SMP2017 {name}: {results[name]}", file=sys.stderr)
    return results


def _ratio(entries: Entries) -> Callable[[Sequence[str]], tuple[list[str], np.ndarray]]:
    questions = [q for _, qs in entries for q in qs]
    owners = [i for i, qs in entries for _ in qs]

    def top(queries: Sequence[str]) -> tuple[list[str], np.ndarray]:
        ids, scores = [], []
        for query in queries:
            _, score, index = process.extractOne(query, questions, scorer=fuzz.ratio)
            ids.append(owners[index])
            scores.append(score)
        return ids, np.asarray(scores)

    return top


def demo() -> dict[str, Any]:
    config = load_config(ROOT / "config.yaml", env={})
    queries = read_labelled(ROOT / "bench" / "data" / "demo-dev.csv")
    bot = build_bot(config)
    results = {"shipped": evaluate(bot, queries).as_dict()}
    # Written after everything was chosen and never used to choose anything since.
    holdout = read_labelled(ROOT / "bench" / "data" / "demo-holdout-zh.csv")
    results["shipped, held-out Chinese"] = evaluate(bot, holdout).as_dict()
    if SEMANTIC:
        knowledge = config.knowledge.model_copy(
            update={"semantic": True, "semantic_languages": ["zh", "en"]}
        )
        bot = build_bot(config.model_copy(update={"knowledge": knowledge}))
        results["English by meaning too, shipped thresholds"] = evaluate(bot, queries).as_dict()
    return results


def latency(sizes: Sequence[int], semantic_sizes: Sequence[int]) -> dict[str, Any]:
    data = json.loads((SHARED / "clinc150" / "data_full.json").read_text())
    pool = [t for t, _ in data["train"]]
    words = sorted({w for t in pool for w in t.split()})
    rng = random.Random(1)
    queries = [t for t, _ in data["test"][:300]]
    results: dict[str, Any] = {}
    normaliser = Normaliser(load_synonyms(ROOT / "knowledge" / "demo"))
    runs = [(size, False) for size in sizes]
    runs += [(size, True) for size in semantic_sizes if SEMANTIC]
    for size, semantic in runs:
        entries = [
            FaqEntry(
                id=f"e{n}",
                questions=tuple(
                    f"{pool[(n * 3 + j) % len(pool)]} {rng.choice(words)}" for j in range(3)
                ),
                answers=(("en", "x"),),
            )
            for n in range(size)
        ]
        gc.collect()
        before = psutil.Process().memory_info().rss
        started = time.perf_counter()
        matcher = Matcher(
            entries, normaliser=normaliser, encoder=load_encoder() if semantic else None
        )
        build = time.perf_counter() - started
        memory = psutil.Process().memory_info().rss - before
        timings = []
        for query in queries:
            started = time.perf_counter()
            matcher.match(query)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        label = f"{size} + semantic" if semantic else f"{size}"
        results[label] = {
            "p50_ms": statistics.median(timings),
            "p99_ms": timings[int(len(timings) * 0.99) - 1],
            "build_s": build,
            "memory_mb": memory / 1024**2,
        }
        print(f"latency {label}: {results[label]}", file=sys.stderr)
        del matcher, entries
    return results


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# Knowledge-base benchmark",
        "",
        f"`bench/kb_bench.py{' --quick' if args.quick else ''}`, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}."
        + (
            f" Re-run here: {args.sections}; the other sections are from the previous run"
            " (bench/results/kb.json)."
            if args.sections
            else ""
        ),
        "",
        "## CLINC150 (test + oos_test; threshold from val)",
        "",
        "Accuracy / out-of-scope recall on test, with the threshold chosen on val by each rule.",
        "The last column is not the protocol: its threshold is set on test for 85% recall,",
        "to show the trade-off the method reaches when val misjudges the threshold",
        "(val's 100 out-of-scope queries are easier than test's 1,000).",
        "",
        "| K | method | recall≥85% on val | recall≥90% on val | max acc+recall on val "
        "| (set on test) |",
        "|---|---|---|---|---|---|",
    ]
    for k, methods in results["clinc150"].items():
        for name, row in methods.items():
            cells = " | ".join(
                f"{_pct(row[rule]['accuracy'])} / {_pct(row[rule]['oos_recall'])}"
                for rule in [*(r for r, _ in RULES), "frontier"]
                if rule in row
            )
            lines.append(f"| {k} | {name} | {cells} |")
    lines += [
        "",
        "## BANKING77-OOS (test; threshold from valid for 85% in-domain oos recall)",
        "",
        "| method | in-scope accuracy | in-domain oos recall | off-topic oos recall |",
        "|---|---|---|---|",
    ]
    for name, row in results["banking77"].items():
        lines.append(
            f"| {name} | {_pct(row['accuracy'])} | {_pct(row['in-domain oos'])} "
            f"| {_pct(row['off-topic oos'])} |"
        )
    lines += ["", "## SMP2017 Chinese", "", "| method | top-1 | AUROC |", "|---|---|---|"]
    for name, row in results["smp2017"].items():
        lines.append(f"| {name} | {_pct(row['top1'])} | {row['auroc']:.3f} |")
    lines += [
        "",
        "## Demo knowledge base, the whole bot: bench/data/demo-dev.csv, and",
        "## bench/data/demo-holdout-zh.csv (held out: evaluated, never tuned on)",
        "",
        "| run | group | in-scope accuracy | wrong answers | clarified | out-of-scope recall |",
        "|---|---|---|---|---|---|",
    ]
    for run, d in results["demo"].items():
        lines += [
            f"| {run} | all | {_pct(d['in_scope_accuracy'])} | {_pct(d['wrong_answer_rate'])} "
            f"| {_pct(d['clarify_rate'])} | {_pct(d['oos_recall'])} |",
            *(
                f"| {run} | {g} | {_pct(r['in_scope_accuracy'])} "
                f"| {_pct(r['wrong_answer_rate'])} | {_pct(r['clarify_rate'])} "
                f"| {_pct(r['oos_recall'])} |"
                for g, r in d["groups"].items()
            ),
        ]
    lines += [
        "",
        f"## Calibration: the shipped answer threshold ({SHIPPED_THRESHOLD:g}) on every data set",
        "",
        "Best match only (no clarifying), the knowledge base's own calibration curve.",
        "Wrong answers are a share of in-scope queries.",
        "",
        "| data set | method | accuracy | wrong answers | out-of-scope recall |",
        "|---|---|---|---|---|",
    ]
    shipped = [
        (f"CLINC150 {k}", name, row["shipped"])
        for k, methods in results["clinc150"].items()
        for name, row in methods.items()
        if "shipped" in row
    ]
    shipped += [
        ("BANKING77 (in-domain oos)", name, row["shipped in-domain oos"])
        for name, row in results["banking77"].items()
        if "shipped in-domain oos" in row
    ]
    shipped += [
        ("SMP2017", name, row["shipped"])
        for name, row in results["smp2017"].items()
        if "shipped" in row
    ]
    lines += [
        f"| {data} | {name} | {_pct(f['accuracy'])} | {_pct(f['wrong'])} "
        f"| {_pct(f['oos_recall'])} |"
        for data, name, f in shipped
    ]
    lines += [
        "",
        "## Match latency",
        "",
        "rapidfuzz scores on one core; with the semantic branch, NumPy's BLAS may use both.",
        "",
        "| entries | p50 | p99 | build | memory |",
        "|---|---|---|---|---|",
        *(
            f"| {size} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['build_s']:.1f} s "
            f"| {r['memory_mb']:.0f} MB |"
            for size, r in results["latency"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the queries, K=10")
    parser.add_argument(
        "--sections",
        help=(
            "comma-separated (clinc150, banking77, smp2017, demo, latency): run only these "
            "and keep the others' figures from the last bench/results/kb.json"
        ),
    )
    args = parser.parse_args()
    sections: dict[str, Callable[[], Any]] = {
        "clinc150": lambda: clinc([10] if args.quick else [1, 5, 10, None], args.quick),
        "banking77": banking,
        "smp2017": smp,
        "demo": demo,
        "latency": lambda: latency(
            [1000, 10_000] if args.quick else [1000, 10_000, 100_000],
            [1000] if args.quick else [1000, 10_000],
        ),
    }
    wanted = list(sections) if not args.sections else args.sections.split(",")
    if unknown := set(wanted) - set(sections):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {}
    if args.sections:
        results = json.loads((RESULTS / "kb.json").read_text())
    for name in wanted:
        results[name] = sections[name]()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kb.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render(results, args)
    (RESULTS / "kb.md").write_text(text)
    print(text)
    best = "RelayDesk + semantic" if SEMANTIC else "RelayDesk matcher"
    headline = results["clinc150"]["K=10"][best]["recall>=90% on val"]
    print(f"kb_clinc150_k10_accuracy ({best}, recall>=90% on val): {headline['accuracy']:.3f}")


if __name__ == "__main__":
    main()
