"""Per-channel rules and threading by reference, ticket and topic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels.base import ChannelAddress, InboundMessage, SenderIdentity, ThreadHints
from router.builders import utc_now
from router.conversations import AuthorKind, Direction
from router.desk.rules import ChannelRules, find_thread
from router.storage import Database


def _mail(sender: str, *, references: tuple[str, ...] = (), ticket: int | None = None,
          topic: str | None = None) -> InboundMessage:  # fmt: skip
    return InboundMessage(
        external_id=f"{sender}-{len(references)}-{ticket}-{topic}",
        address=ChannelAddress("email", sender, thread_id="x"),
        sender=SenderIdentity("email", sender, email=sender),
        text="hello",
        thread_hints=ThreadHints(
            references=references, ticket=ticket, topic=topic, topic_window=3600
        ),
    )


async def test_threads_follow_references_tickets_and_topics_only_for_participants(
    database: Database,
) -> None:
    now = utc_now()
    async with database.write() as repo:
        li = await repo.contact_for(SenderIdentity("email", "li@example.net"), now)
        mallory = await repo.contact_for(SenderIdentity("email", "m@evil.example"), now)
        conversation = await repo.create_conversation(
            contact_id=li,
            address=ChannelAddress("email", "li@example.net", thread_id="q1@example.net"),
            subject="Refund",
            topic="refund",
            now=now,
        )
        await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_kind=AuthorKind.CUSTOMER,
            text="hello",
            channel="email",
            external_id="q1@example.net",
            extras={"sender": "li@example.net", "participants": ["cc@example.net"]},
            now=now,
        )
        by_reference = await find_thread(
            repo, _mail("li@example.net", references=("q1@example.net",)), li, now
        )
        by_ticket = await find_thread(
            repo, _mail("li@example.net", ticket=conversation.id), li, now
        )
        by_topic = await find_thread(repo, _mail("li@example.net", topic="refund"), li, now)
        copied = await find_thread(
            repo, _mail("cc@example.net", references=("q1@example.net",)), mallory, now
        )
        stranger = await find_thread(
            repo, _mail("m@evil.example", references=("q1@example.net",)), mallory, now
        )
        stale = await find_thread(
            repo, _mail("li@example.net", topic="refund"), li, now + timedelta(hours=2)
        )
    assert by_reference.conversation and by_reference.conversation.id == conversation.id
    assert by_ticket.conversation and by_ticket.conversation.id == conversation.id
    assert by_topic.conversation and by_topic.joined == "same sender and subject"
    assert copied.conversation and copied.conversation.id == conversation.id
    assert stranger.conversation is None and stranger.claimed == conversation.id
    assert stale.conversation is None


def test_a_negative_reply_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ChannelRules(auto_reply_limit=-1)
