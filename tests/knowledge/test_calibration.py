"""Calibrated scores and the small per-knowledge-base models."""

from __future__ import annotations

import numpy as np

from knowledge import Matcher, Normaliser, load_folder, load_synonyms
from knowledge.calibration import Calibration, EntryModel, fit_calibration
from knowledge.matcher import DEFAULT_CALIBRATION
from knowledge.wording import Wording
from tests.support.service import DEMO_KB


def test_the_fitted_curve_recovers_a_known_one() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 100, 4000)
    truth = Calibration(slope=0.1, offset=-6.0)
    right = rng.uniform(0, 100, raw.size) < truth(raw)
    fitted = fit_calibration(raw.tolist(), right.tolist(), DEFAULT_CALIBRATION["lexical"])
    assert fitted.samples == 4000
    assert abs(fitted.midpoint() - truth.midpoint()) < 3
    assert abs(fitted.slope - truth.slope) < 0.02


def test_too_few_examples_keep_the_default() -> None:
    default = DEFAULT_CALIBRATION["lexical"]
    assert fit_calibration([90.0] * 50 + [10.0] * 5, [True] * 50 + [False] * 5, default) is default


def test_the_demo_kb_has_its_own_curve_and_scores_keep_their_order() -> None:
    matcher = Matcher(load_folder(DEMO_KB), normaliser=Normaliser(load_synonyms(DEMO_KB)))
    curve = matcher.calibration["lexical"]
    assert curve.samples > 100 and curve.slope > 0
    assert matcher.calibration["chinese"].samples > 50
    candidates = matcher.match("怎么申请退货？", limit=5)
    raws = [dict(c.components)["chinese"] for c in candidates]
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    assert raws == sorted(raws, reverse=True)
    # A question written in the knowledge base is a likely answer, an unrelated one is not.
    assert candidates[0].score > 50 > matcher.match("what is the meaning of life")[0].score


def test_uncalibrated_matching_uses_the_default_curve() -> None:
    matcher = Matcher(load_folder(DEMO_KB), calibrate=False)
    assert matcher.calibration == DEFAULT_CALIBRATION


def test_the_entry_model_learns_what_sets_entries_apart() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 8))
    owners = np.repeat(np.arange(3), 20)
    vectors = (centres[owners] + 0.3 * rng.normal(size=(60, 8))).astype(np.float32)
    model = EntryModel.fit(vectors, owners, 3)
    p = model.probabilities(centres[1].astype(np.float32))
    assert p.argmax() == 1 and abs(p.sum() - 1) < 1e-9
    without = model.probabilities(centres[1].astype(np.float32), without=1)
    assert without[1] == 0 and abs(without.sum() - 1) < 1e-9


def test_the_entry_model_reads_wording_where_embeddings_agree() -> None:
    # Two entries whose questions embed alike ("my balance" / "my credit limit" sit
    # close in meaning) and differ only in their words: the wording features decide.
    questions = {
        0: ["what is my balance", "show my balance", "balance on my account please"],
        1: ["what is my credit limit", "show my credit limit", "credit limit on my card"],
    }
    texts = [q for entry in (0, 1) for q in questions[entry]]
    owners = np.repeat(np.arange(2), 3)
    vectors = np.tile(np.eye(4, dtype=np.float32)[0], (6, 1))
    wording = Wording(texts)
    model = EntryModel.fit(vectors, owners, 2, wording=wording.transform(texts), strength=10.0)
    query = np.eye(4, dtype=np.float32)[0]
    blind = EntryModel.fit(vectors, owners, 2)
    assert abs(blind.probabilities(query)[0] - 0.5) < 0.01
    assert model.probabilities(query, wording.transform(["whats my ballance"])).argmax() == 0
    assert model.probabilities(query, wording.transform(["my credit limit?"])).argmax() == 1


def test_wording_features_are_unit_length_and_bounded() -> None:
    texts = ["Where is my parcel", "where is my order", "cancel my order"]
    wording = Wording(texts)
    rows = wording.transform([*texts, "", "🙂🙂", "zzzz qqqq"])
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
    assert np.allclose(norms[:3], 1.0, atol=1e-5)
    # Nothing known: an empty row, not an error.
    assert rows[3].nnz == rows[4].nnz == rows[5].nnz == 0
    small = Wording(texts, max_features=10)
    assert len(small) == 10 < len(wording)
    assert small.transform(["where is my order"]).shape == (1, 10)
