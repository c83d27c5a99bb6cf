"""The semantic re-ranker: the NumPy encoder against reference embeddings, and what it
changes in matching. Needs the model package (``make semantic``; CI installs it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge import FaqEntry, Matcher
from knowledge.matcher import BLEND_CALIBRATION
from knowledge.semantic import Encoder, ModelNotInstalled, find_model, load_encoder
from router.config import BotConfig
from tests.support.service import STRICT

REFERENCE = Path(__file__).parents[1] / "data" / "semantic" / "reference.json"

try:
    MODEL = find_model()
except ModelNotInstalled as exc:  # pragma: no cover - make test installs the model
    if STRICT:
        raise
    pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder()


def _entry(entry_id: str, *questions: str) -> FaqEntry:
    return FaqEntry(id=entry_id, questions=questions, answers=(("en", entry_id),))


SHOP = [
    _entry(
        "refund-time",
        "How long does a refund take?",
        "When will I get my refund?",
        "refund still not received",
    ),
    _entry(
        "delivery-time",
        "How long does delivery take?",
        "When will my order arrive?",
        "shipping time",
    ),
    _entry(
        "password-reset",
        "I forgot my password",
        "How do I reset my password?",
        "can't log in to my account",
    ),
    _entry(
        "opening-hours",
        "What are your opening hours?",
        "When is the shop open?",
        "are you open on Sunday",
        "营业时间是几点？",
    ),
]


def test_tokens_and_vectors_equal_the_reference_implementation(encoder: Encoder) -> None:
    """Reference produced by sentence-transformers on PyTorch (see the file's produced_by):
    accents, CJK, emoji, control characters, full-width, right-to-left, 300 words."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = reference["texts"]
    assert [encoder.tokenizer(text) for text in texts] == reference["token_ids"]
    vectors = encoder.encode(texts)
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    assert np.abs(vectors - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_paraphrase_without_shared_words_finds_its_entry(encoder: Encoder) -> None:
    question = "my money hasn't come back yet"
    lexical = Matcher(SHOP)
    semantic = Matcher(SHOP, encoder=encoder)
    assert lexical.match(question)[0].entry_id != "refund-time"
    [best, *_] = semantic.match(question)
    assert best.entry_id == "refund-time"
    parts = dict(best.components)
    assert {"meaning", "model", "semantic", "order", "words", "characters"} <= set(parts)


def test_chinese_questions_stay_on_the_lexical_branch(encoder: Encoder) -> None:
    matcher = Matcher(SHOP, encoder=encoder)
    [best, *_] = matcher.match("請問營業時間")
    assert best.entry_id == "opening-hours"
    assert "meaning" not in dict(best.components) and "lexical" in dict(best.components)


def test_an_off_topic_question_scores_below_an_answerable_one(encoder: Encoder) -> None:
    matcher = Matcher(SHOP, encoder=encoder)
    answerable = matcher.match("how long until my parcel gets here")[0]
    off_topic = matcher.match("write me a poem about the sea")[0]
    assert answerable.entry_id == "delivery-time"
    assert answerable.score > off_topic.score + 20


def test_one_question_per_entry_still_answers_a_paraphrase(encoder: Encoder) -> None:
    # No entry has a second phrasing to learn from or to hold out: the branch scores
    # the blend of meaning and lexical score without the entry model, on the blend's
    # own default curve.
    single = [_entry(entry.id, entry.questions[0]) for entry in SHOP]
    matcher = Matcher(single, encoder=encoder)
    assert matcher.calibration["semantic"] == BLEND_CALIBRATION
    [best, *_] = matcher.match("when do I get my money back")
    assert best.entry_id == "refund-time"
    assert "model" not in dict(best.components)
    shipped = BotConfig().answer_threshold
    assert best.score > shipped > matcher.match("write me a poem")[0].score


def test_a_reload_encodes_only_the_questions_that_changed(encoder: Encoder) -> None:
    Matcher(SHOP, encoder=encoder)
    calls: list[int] = []
    original = encoder.encode

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return original(texts)

    encoder.encode = counting  # type: ignore[method-assign]
    try:
        edited = [*SHOP[:-1], _entry("opening-hours", "Are you open on public holidays?")]
        Matcher(edited, encoder=encoder)
    finally:
        del encoder.encode
    assert calls == [1]


def test_a_missing_model_package_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalled, match="no_such_model_package"):
        find_model("no_such_model_package")
    assert find_model(str(MODEL)) == MODEL


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_any_unicode_is_matched_without_an_error(encoder: Encoder, text: str) -> None:
    matcher = _shop_matcher(encoder)
    for candidate in matcher.match(text):
        assert 0 <= candidate.score <= 100


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "\x00\x01", "refund " * 20_000, "مرحبا"])
def test_bad_input_on_the_semantic_branch(encoder: Encoder, text: str) -> None:
    for candidate in _shop_matcher(encoder).match(text):
        assert 0 <= candidate.score <= 100


_MATCHERS: dict[int, Matcher] = {}


def _shop_matcher(encoder: Encoder) -> Matcher:
    if id(encoder) not in _MATCHERS:
        _MATCHERS[id(encoder)] = Matcher(SHOP, encoder=encoder)
    return _MATCHERS[id(encoder)]
