"""Messages that ask several things, or tell a story around one question."""

from __future__ import annotations

import pytest

from bot import Bot
from bot.policy import BotContext, DecisionKind
from bot.questions import asking_clause, questions_in, sentences
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
        # The story in the same sentence, split by commas: the whole scored 18.1 (an
        # answer needs 22); the clause that asks agrees and is surer.
        ("上周买的洗衣机，用了两天就漏水，能上门修吗", "repair-booking"),
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


@pytest.mark.parametrize(
    ("sentence", "clause"),
    [
        ("搬家了，刚下的订单地址还是旧的，能帮我改一下吗", "能帮我改一下吗"),
        ("能改地址吗，我搬家了", "能改地址吗"),
        ("I moved house, can I change the address?", "can I change the address?"),
        ("能改地址吗", None),  # one clause: nothing to choose
        ("搬家了，地址是旧的", None),  # no clause asks
    ],
)
def test_the_clause_that_asks_is_found(sentence: str, clause: str | None) -> None:
    assert asking_clause(sentence) == clause


@pytest.mark.parametrize("text", ["我家猫把遥控器咬坏了，能换一个吗", "孩子把手机摔了，能换一个吗"])
def test_a_clause_that_asks_about_something_else_than_the_story_is_not_the_question(
    bot: Bot, text: str
) -> None:
    # 能换一个吗 alone is the exchange policy; with its story it is not.
    assert bot.decide(text).kind is not DecisionKind.ANSWER
