"""The handoff: the only way into the human queue, always with its context and promise."""

from __future__ import annotations

from router.conversations import ConversationStatus
from router.keys import DESK
from tests.support.service import Service


async def test_a_handoff_records_why_what_the_bot_considered_and_the_promise(
    service: Service,
) -> None:
    memory = service.memory
    receipt = await memory.inject(memory.message("I want to talk to a person", external_id="h1"))
    (ack,) = await memory.wait_for_sent(1)
    assert ack.kind == "ack" and f"#{receipt.conversation_id}" in ack.text
    async with service.db.read() as repo:
        conversation = await repo.conversation(receipt.conversation_id)
        (handoff,) = await repo.handoffs(receipt.conversation_id)
    assert conversation is not None and conversation.status is ConversationStatus.QUEUED
    assert handoff.reason == "asked_for_human"
    assert handoff.context["customer_text"] == "I want to talk to a person"
    assert handoff.sla_due_at == conversation.sla_due_at
    assert handoff.candidates, "the agent sees the answers the bot considered"


async def test_a_split_conversation_is_handed_off_with_its_context(service: Service) -> None:
    memory = service.memory
    await service.add_agent("ana")
    first = await memory.inject(memory.message("talk to a person", external_id="s1"))
    second = await memory.inject(memory.message("Also: my invoice is wrong", external_id="s2"))
    assert second.conversation_id == first.conversation_id
    status, created = await service.api(
        "ana",
        "POST",
        f"/api/agent/conversations/{first.conversation_id}/messages/{second.message_id}/split",
    )
    assert status == 201 and created["status"] == "queued"
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{created['id']}")
    (handoff,) = detail["handoffs"]
    assert handoff["reason"] == "split"
    assert handoff["context"]["split_from"] == first.conversation_id
    assert handoff["context"]["customer_text"] == "Also: my invoice is wrong"
    assert [c["id"] for c in handoff["context"]["earlier_conversations"]] == [first.conversation_id]


async def test_nothing_automatic_goes_to_a_contact_past_the_reply_cap(service: Service) -> None:
    from router.desk.rules import ChannelRules
    from router.keys import ROUTER

    router = service.app[ROUTER]
    router._rules["memory"] = ChannelRules(auto_reply_limit=1)
    memory = service.memory
    await memory.inject(memory.message("How long is the warranty?", external_id="q1"))
    await memory.wait_for_sent(1)
    quiet = await memory.inject(memory.message("How do I get an invoice?", external_id="q2"))
    async with service.db.read() as repo:
        (handoff,) = await repo.handoffs(quiet.conversation_id)
        messages = await repo.messages(quiet.conversation_id)
    assert handoff.reason == "auto_reply_limit"
    assert [m.author_kind.value for m in messages] == ["customer", "bot", "customer"]
    assert len(memory.sent) == 1


async def test_a_conversation_reopened_to_the_queue_is_handed_off_with_its_context(
    service: Service,
) -> None:
    memory = service.memory
    await service.add_agent("ana")
    receipt = await memory.inject(memory.message("talk to a person", external_id="r1"))
    conversation = receipt.conversation_id
    await service.api("ana", "POST", f"/api/agent/conversations/{conversation}/claim")
    await service.api("ana", "POST", f"/api/agent/conversations/{conversation}/resolve")
    desk = service.app[DESK]
    async with service.db.read() as repo:
        ana = await repo.agent_by_name("ana")
    assert ana is not None
    reopened = await desk.reopen(conversation, ana)
    assert reopened.status is ConversationStatus.QUEUED and reopened.assignee_id is None
    async with service.db.read() as repo:
        handoffs = await repo.handoffs(conversation)
    assert [h.reason for h in handoffs] == ["asked_for_human", "reopened"]
    assert handoffs[-1].sla_due_at == reopened.sla_due_at
    assert "earlier_conversations" in handoffs[-1].context
