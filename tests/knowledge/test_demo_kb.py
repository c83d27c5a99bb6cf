"""The shipped demo knowledge base and its loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import (
    KnowledgeError,
    Matcher,
    Normaliser,
    detect_language,
    load_folder,
    load_synonyms,
    normalise,
)
from tests.support.service import DEMO_KB


def test_the_demo_kb_covers_the_desk_in_both_languages() -> None:
    entries = load_folder(DEMO_KB)
    assert len(entries) >= 30
    for entry in entries:
        zh = [q for q in entry.questions if detect_language(q) == "zh"]
        en = [q for q in entry.questions if detect_language(q) == "en"]
        assert len(zh) >= 3 and len(en) >= 3, entry.id
        assert {lang for lang, _ in entry.answers} == {"zh", "en"}, entry.id
    ids = {e.id for e in entries}
    for topic in (
        "return-how",
        "refund-time",
        "warranty-terms",
        "repair-booking",
        "installation",
        "delivery-time",
        "order-tracking",
        "change-address",
        "cancel-order",
        "invoice",
        "payment-failed",
        "damaged-parcel",
        "spare-parts",
    ):
        assert topic in ids


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("怎么申请退货？", "return-how"),
        ("How do I return an item?", "return-how"),
        ("退款多久到账", "refund-time"),
        ("When will my refund arrive?", "refund-time"),
        ("地址填错了，能改吗", "change-address"),
        ("I entered the wrong address", "change-address"),
        ("快递到哪了", "order-tracking"),
        ("ＨＯＷ ＬＯＮＧ ＩＳ ＴＨＥ ＷＡＲＲＡＮＴＹ？", "warranty-terms"),
    ],
)
def test_questions_find_their_entry(question: str, entry: str) -> None:
    matcher = Matcher(load_folder(DEMO_KB))
    assert matcher.match(question)[0].entry_id == entry


def test_normalisation_folds_width_case_and_filler() -> None:
    assert normalise("请问，怎么申请退货？") == normalise("申请退货")
    assert normalise("Hello, HOW do I return ITEMS?") == "return item"
    assert normalise("") == "" and normalise("？！…") == ""


def test_a_broken_file_is_refused_with_its_name_and_entry(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- id: ok\n  questions: [q]\n  answer: a\n")
    (tmp_path / "b.yaml").write_text("- id: broken\n  questions: []\n  answer: a\n")
    with pytest.raises(KnowledgeError, match=r"b\.yaml: entry 'broken': 'questions' is empty"):
        load_folder(tmp_path)
    (tmp_path / "b.yaml").write_text("- id: ok\n  questions: [q2]\n  answer: a\n")
    with pytest.raises(KnowledgeError, match=r"b\.yaml: entry id 'ok' is already used"):
        load_folder(tmp_path)
    (tmp_path / "b.yaml").write_text("- id: x\n  questions: [q\n")
    with pytest.raises(KnowledgeError, match=r"b\.yaml:3: not valid YAML"):
        load_folder(tmp_path)


def test_an_empty_knowledge_base_matches_nothing() -> None:
    assert Matcher([]).match("anything") == []


@pytest.mark.parametrize(
    ("traditional", "entry"),
    [
        ("請問保固多久", "warranty-terms"),
        ("退款多久到賬", "refund-time"),
        ("怎麼申請退貨？", "return-how"),
        ("我的包裹到哪了", "order-tracking"),
        ("發票在哪裡下載", "invoice"),
    ],
)
def test_traditional_chinese_finds_the_simplified_entry(traditional: str, entry: str) -> None:
    kb = load_folder(DEMO_KB)
    matcher = Matcher(kb, normaliser=Normaliser(load_synonyms(DEMO_KB)))
    assert matcher.match(traditional)[0].entry_id == entry


def test_synonyms_map_variants_to_one_word() -> None:
    normaliser = Normaliser({"保固": "保修", "money back": "refund", "包裹": "快递"})
    assert normaliser("保固多久") == normaliser("保修多久")
    assert normaliser("I want my MONEY BACK") == normaliser("I want a refund")
    # Whole words only: "moneyback" is not "money back".
    assert "refund" not in normaliser("moneyback")


def test_the_synonym_file_is_not_read_as_entries(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text("- id: a\n  questions: [q]\n  answer: x\n")
    (tmp_path / "synonyms.yaml").write_text("refund: [money back]\n")
    assert [e.id for e in load_folder(tmp_path)] == ["a"]
    assert load_synonyms(tmp_path, shipped=False) == {"money back": "refund"}
    assert load_synonyms(tmp_path)["money back"] == "refund"
    (tmp_path / "synonyms.yaml").write_text("refund: money back\n")
    with pytest.raises(KnowledgeError, match="needs a list of variants"):
        load_synonyms(tmp_path)


def test_a_word_given_twice_in_the_synonym_file_is_refused_not_half_read(
    tmp_path: Path,
) -> None:
    # YAML would keep only the second list: 退钱 would silently stop meaning 退款.
    (tmp_path / "synonyms.yaml").write_text("退款: [退钱]\nrefund: [money back]\n退款: [回钱]\n")
    with pytest.raises(KnowledgeError, match=r"synonyms.yaml:3: .*'退款' is given twice"):
        load_synonyms(tmp_path)


def test_the_shipped_after_sales_words_name_each_word_once() -> None:
    from knowledge.loader import SHIPPED_SYNONYMS, _synonyms_file

    table = _synonyms_file(Path(__file__).parents[2] / "knowledge" / SHIPPED_SYNONYMS)
    assert table["优惠码"] == "优惠券" and table["代金券"] == "优惠券"
    # Each variant is two characters or more: variants replace substrings.
    assert all(len(variant) >= 2 for variant in table)
