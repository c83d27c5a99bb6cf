"""Synonyms learned from agents' saved phrasings, once an admin accepts them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge import (
    KnowledgeError,
    Matcher,
    Normaliser,
    accept_suggestion,
    dismiss_suggestion,
    learn,
    load_folder,
    load_synonyms,
    pending_suggestions,
    suggest_synonyms,
)
from knowledge.normalise import fold
from knowledge.words import substitution
from tests.support.service import DEMO_KB


@pytest.mark.parametrize(
    ("phrasing", "question", "pair"),
    [
        ("冰箱趴窝了怎么办", "冰箱坏了怎么办", ("趴窝了", "坏了")),
        ("洗衣機趴窩了能上門修嗎", "洗衣机坏了能上门修吗", ("趴窝了", "坏了")),  # folded
        # A pair a person must judge: an admin dismisses this one.
        ("热水器怎么安装", "空调怎么安装", ("热水器", "空调")),
        ("我的冰箱坏了", "你的冰箱坏了", None),  # function words say nothing
        ("冰箱趴窝了要修吗", "洗衣机坏了怎么办", None),  # more than one change
        ("完全不一样的话", "冰箱坏了", None),
        ("the fridge broke", "the fridge died", None),  # Chinese only
    ],
)
def test_one_expression_said_another_way_is_a_pair(
    phrasing: str, question: str, pair: tuple[str, str] | None
) -> None:
    assert substitution(fold(phrasing), fold(question)) == pair


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(DEMO_KB, folder)
    return folder


def matcher(folder: Path) -> Matcher:
    return Matcher(load_folder(folder), normaliser=Normaliser(load_synonyms(folder)))


def save(folder: Path, before: Matcher, entry_id: str, phrasing: str) -> list[tuple[str, str]]:
    """What "Save as FAQ" does: the phrasing joins the entry, a synonym is suggested."""
    entry = before.entry(entry_id)
    assert entry is not None
    learn(folder, question=phrasing, answer="", extends=entry_id)
    found = suggest_synonyms(
        folder,
        [phrasing],
        entry.questions,
        entry=entry_id,
        knowledge_base=[q for e in before.entries for q in e.questions],
        same=before.normaliser.fold,
    )
    return [(s.variant, s.canonical) for s in found]


def test_an_accepted_word_is_understood_in_every_entry(kb: Path) -> None:
    before = matcher(kb)
    assert save(kb, before, "repair-booking", "我的洗衣机趴窝了要修") == [("趴窝了", "坏了")]
    # Suggested, not applied: another entry's question with the word is still unsure.
    question = "收到的时候东西就趴窝了"
    unsure = matcher(kb).match(question, limit=1)[0]
    assert unsure.entry_id == "damaged-parcel" and unsure.score < 22
    assert [s.variant for s in pending_suggestions(kb)] == ["趴窝了"]

    accept_suggestion(kb, "趴窝了")
    assert load_synonyms(kb)["趴窝了"] == "坏了"
    assert pending_suggestions(kb) == []
    sure = matcher(kb).match(question, limit=1)[0]
    assert sure.entry_id == "damaged-parcel" and sure.score >= 22
    # The two files are part of the folder, not entries.
    assert len(load_folder(kb)) == len(before.entries)


def test_a_dismissed_or_known_word_is_not_suggested_again(kb: Path) -> None:
    before = matcher(kb)
    # The agent's answer fits both; the words do not mean the same. An admin says so.
    assert save(kb, before, "installation", "热水器谁来安装") == [("热水器", "空调")]
    dismiss_suggestion(kb, "热水器")
    assert pending_suggestions(kb) == []
    assert "热水器" not in load_synonyms(kb)
    # Saved again: still dismissed. A word the knowledge base uses (退货 against 退款)
    # has a meaning of its own and is never a variant.
    assert save(kb, matcher(kb), "installation", "热水器谁来安装呢") == []
    assert save(kb, matcher(kb), "refund-time", "退货多久到账") == []


def test_deciding_on_a_word_nobody_suggested_is_refused(kb: Path) -> None:
    with pytest.raises(KnowledgeError, match="no pending suggestion"):
        accept_suggestion(kb, "不存在")
