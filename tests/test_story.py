"""The walking skeleton's story, end to end: a web-chat customer, the bot, an agent."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.service import Service
from tests.support.webchat import Visitor


@dataclass(frozen=True)
class Script:
    question: str
    answer_contains: str
    vague: str
    choices_include: set[str]
    unanswerable: str
    handoff_reason: str
    notice_contains: str
    agent_reply: str
    follow_up: str


CHINESE = Script(
    question="怎么申请退货？",
    answer_contains="申请售后",
    vague="维修",
    choices_include={"预约维修", "维修费用"},
    unanswerable="我家猫把遥控器咬坏了怎么办",
    handoff_reason="low_confidence",
    notice_contains="前回复",
    agent_reply="您好，遥控器可以在配件专区购买，我给您发个链接。",
    follow_up="好的，谢谢",
)
ENGLISH = Script(
    question="How do I return an item?",
    answer_contains="After-sales service",
    vague="return",
    choices_include={"How to return an item", "Return deadline"},
    unanswerable="talk to a person",
    handoff_reason="asked_for_human",
    notice_contains="will answer by",
    agent_reply="Hi, I'm Li Wei. I can help with that right away.",
    follow_up="Thanks!",
)


@pytest.mark.parametrize("script", [CHINESE, ENGLISH], ids=["zh", "en"])
async def test_customer_bot_and_agent_story(service: Service, script: Script) -> None:
    await service.add_agent("li.wei")
    customer = Visitor(service.client)
    await customer.connect()

    answer = await customer.ask(script.question)
    assert answer["author"] == "bot" and answer["kind"] == "answer"
    assert script.answer_contains in answer["text"]

    clarify = await customer.ask(script.vague)
    assert clarify["kind"] == "clarify"
    labels = {c["label"] for c in clarify["choices"]}
    assert 2 <= len(labels) <= 3 and script.choices_include <= labels
    chosen = next(c for c in clarify["choices"] if c["label"] in script.choices_include)
    await customer.choose(chosen)
    picked = await customer.reply()
    assert picked["kind"] == "answer" and picked["text"]

    notice = await customer.ask(script.unanswerable)
    assert notice["author"] == "system" and notice["kind"] == "ack"
    assert script.notice_contains in notice["text"]

    status, queue = await service.api("li.wei", "GET", "/api/agent/conversations?status=queued")
    assert status == 200
    [waiting] = queue["conversations"]
    assert waiting["channel"] == "webchat" and waiting["sla_due_at"] is not None
    conversation_id = waiting["id"]
    assert f"#{conversation_id}" in notice["text"]

    status, detail = await service.api(
        "li.wei", "GET", f"/api/agent/conversations/{conversation_id}"
    )
    assert status == 200
    customer_lines = [m["text"] for m in detail["messages"] if m["author"] == "customer"]
    assert customer_lines[0] == script.question and customer_lines[-1] == script.unanswerable
    [handoff] = detail["handoffs"]
    assert handoff["reason"] == script.handoff_reason
    assert handoff["language"] == ("zh" if script is CHINESE else "en")
    assert handoff["candidates"] and all("score" in c for c in handoff["candidates"])
    assert detail["contact"]["identities"][0]["channel"] == "webchat"

    status, claimed = await service.api(
        "li.wei", "POST", f"/api/agent/conversations/{conversation_id}/claim"
    )
    assert status == 200 and claimed["status"] == "assigned"
    assert claimed["assignee"]["name"] == "li.wei"

    status, _ = await service.api(
        "li.wei",
        "POST",
        f"/api/agent/conversations/{conversation_id}/reply",
        json={"text": script.agent_reply},
    )
    assert status == 202
    from_agent = await customer.reply()
    assert from_agent["author"] == "agent" and from_agent["text"] == script.agent_reply

    # While a person owns the conversation the bot stays silent.
    await customer.send(script.follow_up)
    status, _ = await service.api(
        "li.wei", "POST", f"/api/agent/conversations/{conversation_id}/resolve"
    )
    assert status == 200
    # A person answered: resolving asks for a rating, in the chat, as five choices.
    survey = await customer.reply()
    assert survey["author"] == "system" and survey["kind"] == "survey"
    assert [c["id"] for c in survey["choices"]] == [f"csat:{n}" for n in range(1, 6)]
    await customer.choose(survey["choices"][4])
    thanks = await customer.reply()
    assert thanks["kind"] == "system"

    status, resolved = await service.api(
        "li.wei", "GET", f"/api/agent/conversations/{conversation_id}"
    )
    assert resolved["status"] == "resolved" and resolved["first_response_at"] is not None
    assert resolved["satisfaction"]["score"] == 5  # and the rating reopened nothing
    # The default policy promises a first response only.
    assert [(p["metric"], p["outcome"]) for p in resolved["promises"]] == [
        ("first_response", "met")
    ]
    authors = [m["author"] for m in resolved["messages"] if m["direction"] != "note"]
    assert authors.count("bot") == 3, authors  # answer, clarify, chosen answer; no more

    # Writing again soon after reopens the conversation with the whole story, for a
    # person (the bot keeps out of it).
    await customer.ask(script.question)
    status, reopened = await service.api(
        "li.wei", "GET", f"/api/agent/conversations/{conversation_id}"
    )
    assert reopened["status"] == "queued"
    assert reopened["handoffs"][-1]["reason"] == "reopened_by_customer"
    authors = [m["author"] for m in reopened["messages"] if m["direction"] != "note"]
    assert authors.count("bot") == 3, authors
    await customer.close()
