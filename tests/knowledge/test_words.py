"""Coverage: how much of what a Chinese question is about an entry's questions hold."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.words import Coverage, content_words

QUESTIONS = [
    "热水器可以上门安装吗",  # entry 0: installation
    "安装要收费吗",
    "怎么申请退货",  # entry 1: returns
    "退货流程是什么",
]
OWNERS = np.asarray([0, 0, 1, 1], dtype=np.intp)


def test_function_words_weigh_nothing_and_content_words_most() -> None:
    weights = dict(content_words("我的手机游戏怎么安装"))
    assert "的" not in weights and "我" not in weights
    assert weights["手机游戏"] > weights["安装"] > weights["怎么"]
    assert content_words("我的了") == []


def test_an_entry_covers_a_question_about_what_it_says() -> None:
    coverage = Coverage(QUESTIONS, OWNERS, 2)
    installing = coverage("热水器怎么安装")
    assert installing[0] > 0.8 and installing[1] < 0.3
    # 手机 and 游戏 are what the question is about; the installation entry has neither.
    assert coverage("手机游戏怎么安装")[0] < 0.5


def test_a_word_is_covered_in_part_by_some_of_its_characters() -> None:
    coverage = Coverage(QUESTIONS, OWNERS, 2)
    assert 0.2 < coverage("退回")[1] < 1.0


def test_a_held_out_question_does_not_cover_itself() -> None:
    coverage = Coverage([*QUESTIONS, "冰箱的压缩机保修几年"], np.r_[OWNERS, 1], 2)
    row = len(QUESTIONS)
    assert coverage("冰箱压缩机保修")[1] > 0.9
    assert coverage("冰箱压缩机保修", leave_out_row=row)[1] < 0.3
    # Words other questions of the entry hold still count.
    assert coverage("退货流程", leave_out_row=row)[1] > 0.9


def test_a_question_without_content_words_is_covered_by_every_entry() -> None:
    assert list(Coverage(QUESTIONS, OWNERS, 2)("我的？")) == [1.0, 1.0]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gets_shares_between_zero_and_one(text: str) -> None:
    shares = Coverage(QUESTIONS, OWNERS, 2)(text)
    assert shares.shape == (2,) and np.all((shares >= 0.0) & (shares <= 1.0))
