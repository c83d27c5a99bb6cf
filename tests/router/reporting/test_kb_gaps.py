"""The questions the bot can't answer, grouped as the same question: checked against a
labelled set of paraphrases in Chinese (both scripts) and English."""

from __future__ import annotations

from pathlib import Path

import yaml
from sklearn.metrics import adjusted_rand_score

from knowledge import Normaliser, load_synonyms
from router.reporting.kb_gaps import cluster_questions
from tests.support.service import DEMO_KB

LABELLED = Path(__file__).resolve().parents[2] / "data" / "kb_gaps.yaml"


def test_paraphrases_cluster_by_the_question_they_ask() -> None:
    data = yaml.safe_load(LABELLED.read_text("utf-8"))
    texts = [q for questions in data.values() for q in questions]
    truth = [label for label, questions in data.items() for _ in questions]
    found = cluster_questions(texts, Normaliser(load_synonyms(DEMO_KB)))
    score = adjusted_rand_score(truth, found)
    groups: dict[int, set[str]] = {}
    for label, cluster in zip(truth, found, strict=True):
        groups.setdefault(cluster, set()).add(label)
    mixed = [labels for labels in groups.values() if len(labels) > 1]
    assert mixed == [], f"clusters mixing questions: {mixed}"
    assert score >= 0.8, f"adjusted Rand index {score:.2f}, clusters {found}"


def test_traditional_and_simplified_are_one_question() -> None:
    labels = cluster_questions(
        ["发票抬头写错了怎么修改", "發票抬頭寫錯了怎麼修改", "How do I return an item?"],
        Normaliser(),
    )
    assert labels[0] == labels[1] != labels[2]
