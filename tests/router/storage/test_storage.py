"""The repositories on each backend: what goes in comes out, claims and leases hold, and
a resend or a prune touches only what it should."""

from __future__ import annotations

from datetime import timedelta

from channels.base import Attachment, ChannelAddress, Choice, SenderIdentity
from router.builders import utc_now
from router.conversations import AuthorKind, Direction
from router.storage import Database


async def test_a_message_comes_back_as_it_was_stored(database: Database) -> None:
    now = utc_now()
    async with database.write() as repo:
        contact = await repo.contact_for(
            SenderIdentity("email", "li@example.net", display_name="Li", email="li@example.net"),
            now,
        )
        conversation = await repo.create_conversation(
            contact_id=contact,
            address=ChannelAddress("email", "li@example.net", thread_id="m1@example.net"),
            subject="退货 [#1]",
            now=now,
        )
        stored = await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_kind=AuthorKind.CUSTOMER,
            text="请问怎么退货？\n第二行",
            channel="email",
            external_id="m1@example.net",
            extras={"subject": "退货", "participants": ["cc@example.net"]},
            attachments=(Attachment("发票.pdf", "application/pdf", 12, "email/abc-fp.pdf"),),
            choices=(Choice("return-how", "怎么退货"),),
            now=now,
        )
    async with database.read() as repo:
        (message,) = await repo.messages(conversation.id)
        found = await repo.message_exists("email", "m1@example.net")
    assert found == stored.id
    assert message.text == "请问怎么退货？\n第二行"
    assert message.extras["participants"] == ["cc@example.net"]
    assert message.attachments == stored.attachments
    assert message.choices == (Choice("return-how", "怎么退货"),)
    assert message.created_at == now


async def test_a_second_identity_with_the_same_email_joins_the_contact(database: Database) -> None:
    now = utc_now()
    async with database.write() as repo:
        by_mail = await repo.contact_for(
            SenderIdentity("email", "li@example.net", email="li@example.net"), now
        )
        by_bridge = await repo.contact_for(
            SenderIdentity("shop-app", "u-7", email="LI@example.net"), now
        )
        stranger = await repo.contact_for(SenderIdentity("webchat", "ab" * 16), now)
    assert by_mail == by_bridge != stranger


async def test_a_claimed_outbox_row_waits_for_its_lease_and_a_resend_needs_a_dead_row(
    database: Database,
) -> None:
    now = utc_now()
    async with database.write() as repo:
        contact = await repo.contact_for(SenderIdentity("memory", "c1"), now)
        conversation = await repo.create_conversation(
            contact_id=contact, address=ChannelAddress("memory", "c1"), subject=None, now=now
        )
        message = await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_kind=AuthorKind.AGENT,
            kind="agent",
            text="hello",
            channel="memory",
            now=now,
        )
        item = await repo.enqueue(message=message, address=ChannelAddress("memory", "c1"), now=now)
    async with database.write() as repo:
        (claimed,) = await repo.claim_due(
            now=now, lease_until=now + timedelta(seconds=60), limit=10
        )
        assert claimed.id == item.id and claimed.attempts == 1
    async with database.write() as repo:
        assert await repo.claim_due(now=now, lease_until=now, limit=10) == []
        later = now + timedelta(seconds=61)
        (again,) = await repo.claim_due(now=later, lease_until=later, limit=10)
        assert again.attempts == 2
        assert not await repo.resend(
            item.id, conversation_id=conversation.id, now=later, give_up_at=later
        ), "only a dead row is sent again"
        await repo.mark_dead(item.id, error="refused")
        assert await repo.dead_counts([conversation.id]) == {conversation.id: 1}
        assert not await repo.resend(
            item.id, conversation_id=conversation.id + 1, now=later, give_up_at=later
        ), "a resend names the conversation the row belongs to"
        assert await repo.resend(
            item.id, conversation_id=conversation.id, now=later, give_up_at=later
        )
        assert await repo.dead_counts([conversation.id]) == {}


async def test_old_chat_frames_are_pruned_and_recent_ones_kept(database: Database) -> None:
    old, now = utc_now() - timedelta(days=40), utc_now()
    async with database.write() as repo:
        await repo.append_frame("ab" * 16, "msg-1", {"text": "old"}, old)
        await repo.append_frame("cd" * 16, "msg-2", {"text": "new"}, now)
        assert await repo.prune_frames(now - timedelta(days=30)) == 1
        assert await repo.frames_after("ab" * 16, 0, 10) == []
        assert [f["text"] for f in await repo.frames_after("cd" * 16, 0, 10)] == ["new"]
