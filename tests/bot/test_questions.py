"""Messages that ask several things, or tell a story around one question."""

from __future__ import annotations

import pytest

from bot import Bot
from bot.policy import BotContext, DecisionKind
from bot.questions import questions_in, sentences
from knowledge import Matcher, Normaliser, load_folder, load_synonyms
from tests.support.service import DEMO_KB


@pytest.fixture(scope="module")
def bot() -> Bot:
    matcher = Matcher(load_folder(DEMO_KB), normaliser=Normaliser(load_synonyms(DEMO_KB)))
    return Bot(matcher=matcher)


def test_sentences_and_the_questions_among_them() -> None:
    mail = "Hi,\nThe kettle weighs 3.5 kg. Can you help?\nHow do I return it?? Thanks!"
    assert sentences(mail) == [
        "Hi,",
        "The kettle weighs 3.5 kg.",
        "Can you help?",
        "How do I return it??",
        "Thanks!",
    ]
    # "Can you help?" asks about nothing in particular.
    assert questions_in(mail) == ["How do I return it??"]
    assert questions_in("东西坏了能修吗？退货运费谁出？") == ["东西坏了能修吗？", "退货运费谁出？"]


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("I returned my shoes on Monday. How long does a refund take?", "refund-time"),
        ("东西上周五就寄回去了。退款什么时候到？", "refund-time"),
        ("Hi,\nI bought a kettle last week.\nHow do I return it?\nThanks", "return-how"),
        # Two phrasings of one question are one question.
        ("退货怎么弄？流程是什么？", "return-how"),
    ],
)
def test_the_question_is_answered_whatever_story_surrounds_it(
    bot: Bot, text: str, entry: str
) -> None:
    decision = bot.decide(text)
    assert (decision.kind, decision.entry_id) == (DecisionKind.ANSWER, entry)


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        (
            "Where is my order? Also, can I change the delivery address?",
            ["order-tracking", "change-address"],
        ),
        ("东西坏了能修吗？退货运费谁出？", ["repair-booking", "return-shipping-fee"]),
    ],
)
def test_two_different_questions_are_taken_one_at_a_time(
    bot: Bot, text: str, entries: list[str]
) -> None:
    decision = bot.decide(text)
    assert decision.kind is DecisionKind.CLARIFY and decision.reason == "several_questions"
    assert [c.id for c in decision.choices] == entries
    assert "one at a time" in decision.text or "一个一个" in decision.text
    # Where the channel cannot offer choices (email), a person takes both.
    by_mail = bot.decide(text, context=BotContext(clarify=False))
    assert by_mail.kind is DecisionKind.HANDOFF and by_mail.reason == "several_questions"
    assert {c.id for c in by_mail.candidates} >= set(entries)


def test_one_question_of_two_is_never_answered_as_the_whole(bot: Bot) -> None:
    decision = bot.decide("How do I return an item? And can you also repaint my car?")
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "several_questions"
    assert "return-how" in {c.id for c in decision.candidates}


def test_the_same_question_twice_or_none_covered_is_not_several(bot: Bot) -> None:
    # Pasted three times: one question (it is asked again, not several things).
    assert questions_in("能换一个吗？" * 3) == ["能换一个吗？"]
    decision = bot.decide("我家猫把遥控器咬坏了，能换一个吗？" * 3)
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "low_confidence"
    # Two questions the knowledge base knows nothing of: the usual handoff.
    decision = bot.decide("Do you ship to Mars? Is the moon made of cheese?")
    assert decision.kind is DecisionKind.HANDOFF and decision.reason == "low_confidence"
