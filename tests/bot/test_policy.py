"""The front line's decisions, without any transport."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import Bot, BotContext, BotSettings, DecisionKind
from knowledge import Matcher, load_folder
from tests.support.service import DEMO_KB


@pytest.fixture(scope="module")
def bot() -> Bot:
    return Bot(matcher=Matcher(load_folder(DEMO_KB)))


def test_a_clear_question_is_answered_in_its_language(bot: Bot) -> None:
    zh = bot.decide("怎么申请退货？")
    assert zh.kind is DecisionKind.ANSWER and zh.entry_id == "return-how"
    assert "申请售后" in zh.text
    en = bot.decide("How do I return an item?")
    assert en.entry_id == "return-how" and "After-sales service" in en.text


def test_two_close_entries_are_offered_as_choices(bot: Bot) -> None:
    decision = bot.decide("return")
    assert decision.kind is DecisionKind.CLARIFY
    assert {c.id for c in decision.choices} >= {"return-how", "return-window"}
    assert 2 <= len(decision.choices) <= 3


def test_a_pressed_choice_is_answered(bot: Bot) -> None:
    decision = bot.decide("How long a refund takes", choice="refund-time")
    assert decision.kind is DecisionKind.ANSWER and decision.entry_id == "refund-time"


@pytest.mark.parametrize(
    "text", ["转人工", "人工", "客服", "我要找客服", "talk to a person", "agent", "human please"]
)
def test_asking_for_a_person_hands_off_at_once(bot: Bot, text: str) -> None:
    decision = bot.decide(text)
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "asked_for_human"


@pytest.mark.parametrize("text", ["客服几点上班", "人工客服几点下班", "人工客服幾點下班"])
def test_a_question_about_the_service_desk_is_not_a_request_for_a_person(
    bot: Bot, text: str
) -> None:
    assert bot.decide(text).entry_id == "service-hours"


@pytest.mark.parametrize(
    "text",
    ["轉人工", "聯繫客服", "人工客服幾點下班？幫我轉人工", "I've waited for hours, I want a human"],
)
def test_a_request_for_a_person_in_traditional_characters_hands_off(bot: Bot, text: str) -> None:
    decision = bot.decide(text)
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "asked_for_human"


@pytest.mark.parametrize(
    "text", ["Do you need a person to sign for the delivery?", "Do I need someone at home?"]
)
def test_a_question_mentioning_a_person_is_not_a_request_for_one(bot: Bot, text: str) -> None:
    assert bot.decide(text).reason != "asked_for_human"


def test_a_complaint_in_traditional_characters_is_urgent(bot: Bot) -> None:
    decision = bot.decide("我要投訴你們")
    assert decision.kind is DecisionKind.HANDOFF and decision.urgent


@pytest.mark.parametrize(
    "text", ["我家猫把遥控器咬坏了怎么办", "Do you have a store in Berlin?", "今天天气怎么样"]
)
def test_what_the_kb_cannot_answer_goes_to_a_person(bot: Bot, text: str) -> None:
    decision = bot.decide(text)
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "low_confidence"
    assert decision.candidates  # the agent sees what the bot considered


def test_complaints_are_urgent_handoffs(bot: Bot) -> None:
    decision = bot.decide("这是欺诈，我要投诉你们")
    assert decision.kind is DecisionKind.HANDOFF and decision.urgent


def test_misses_in_a_row_hand_off(bot: Bot) -> None:
    assert bot.decide("return", context=BotContext(consecutive_misses=1)).kind is (
        DecisionKind.CLARIFY
    )
    decision = bot.decide("return", context=BotContext(consecutive_misses=2))
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "repeated_misses"


def test_greetings_and_thanks_get_a_friendly_word(bot: Bot) -> None:
    assert "您好" in bot.decide("你好").text
    assert bot.decide("thanks").reason == "thanks"


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "\x00\x01", "x" * 100_000, "مرحبا"])
def test_odd_input_gets_a_decision_not_an_exception(bot: Bot, text: str) -> None:
    assert bot.decide(text).kind in set(DecisionKind)


def test_settings_refuse_inverted_thresholds() -> None:
    with pytest.raises(ValueError, match="clarify_threshold"):
        BotSettings(answer_threshold=50, clarify_threshold=70)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=500), misses=st.integers(min_value=0, max_value=5))
def test_any_unicode_gets_a_decision(bot: Bot, text: str, misses: int) -> None:
    decision = bot.decide(text, context=BotContext(consecutive_misses=misses))
    assert decision.kind in set(DecisionKind)
    assert decision.language in {"zh", "en"}
    if decision.kind is DecisionKind.ANSWER:
        assert decision.text
    if decision.kind is DecisionKind.CLARIFY:
        assert 1 <= len(decision.choices) <= 3
