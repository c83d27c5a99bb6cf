"""Every transition is a conditional UPDATE that says whether it happened: two agents, two
nodes, or an agent and the auto-assigner can never both win."""

from __future__ import annotations

import asyncio
import hashlib
from zoneinfo import ZoneInfo

from bot import BotTexts
from channels.base import ChannelAddress
from router.builders import utc_now
from router.conversations import ConversationStatus, Priority
from router.delivery.events import ConversationChanged, EventBus, MessageAdded
from router.delivery.outbox import OutboxDispatcher
from router.delivery.retry import RetryPolicy
from router.desk import transitions
from router.desk.actions import HumanDesk
from router.desk.aftercare import Aftercare
from router.desk.handoff import Handoffs
from router.desk.promises import Promises
from router.desk.sla import SlaPolicies
from router.desk.work import Units
from router.errors import AlreadyClaimed, NotYours
from router.storage import Agent, Database

PROMISES = {"low": 240, "normal": 60, "high": 15, "urgent": 5}


def desk_on(db: Database) -> HumanDesk:
    events = EventBus()
    outbox = OutboxDispatcher(
        db=db, channels={}, events=events, policy=RetryPolicy(), clock=utc_now
    )
    handoffs = Handoffs(
        promises=Promises(SlaPolicies.simple(PROMISES, ZoneInfo("UTC"))), texts=BotTexts()
    )
    return HumanDesk(
        units=Units(db=db, outbox=outbox, events=events, clock=utc_now),
        handoffs=handoffs,
        texts=BotTexts(),
        aftercare=Aftercare(handoffs=handoffs, texts=BotTexts(), secret=b"test-secret"),
    )


async def queued(db: Database, customer: str = "c-1") -> int:
    now = utc_now()
    async with db.write() as repo:
        contact = await repo.create_contact(
            channel="memory", external_id=customer, display_name=None, email=None, now=now
        )
        conversation = await repo.create_conversation(
            contact_id=contact, address=ChannelAddress("memory", customer), subject=None, now=now
        )
        assert await repo.hand_off(
            conversation.id, priority=Priority.NORMAL, sla_due_at=now, now=now
        )
    return conversation.id


def _token(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


async def agents(db: Database, *names: str) -> list[Agent]:
    async with db.write() as repo:
        return [
            await repo.add_agent(
                name=name, token_hash=f"{abs(hash(name)):064d}"[:64], now=utc_now()
            )
            for name in names
        ]


async def test_an_assignment_read_before_a_claim_does_not_overwrite_it(database: Database) -> None:
    conversation_id = await queued(database)
    claimer, assignee = await agents(database, "ana", "bo")
    async with database.read() as repo:
        seen = await repo.conversation(conversation_id)
    assert seen is not None and seen.assignee_id is None
    # Meanwhile another agent (or node) claims it and commits.
    async with database.write() as repo:
        assert await repo.claim(conversation_id, agent_id=claimer.id, now=utc_now())
    # An assignment decided on what was read before the claim must not win.
    async with database.write() as repo:
        assert not await repo.assign(
            conversation_id, expected=seen.assignee_id, agent_id=assignee.id, now=utc_now()
        )
        after = await repo.conversation(conversation_id)
    assert after is not None and after.assignee_id == claimer.id


async def test_each_transition_reports_whether_it_happened(database: Database) -> None:
    conversation_id = await queued(database)
    (ana,) = await agents(database, "ana")
    now = utc_now()
    async with database.write() as repo:
        assert not await repo.hand_off(
            conversation_id, priority=Priority.NORMAL, sla_due_at=now, now=now
        ), "only the bot's conversation is handed off"
        assert not await repo.reopen(conversation_id, agent_id=None, sla_due_at=now, now=now)
        assert await repo.claim(conversation_id, agent_id=ana.id, now=now)
        assert not await repo.claim(conversation_id, agent_id=ana.id + 1, now=now)
        assert not await repo.resolve(conversation_id, now, assignee_id=ana.id + 1)
        assert await repo.resolve(conversation_id, now, assignee_id=ana.id)
        assert not await repo.resolve(conversation_id, now)
        assert not await repo.assign(conversation_id, expected=ana.id, agent_id=None, now=now)
        assert await repo.reopen(conversation_id, agent_id=None, sla_due_at=now, now=now)
        assert not await repo.reopen(conversation_id, agent_id=None, sla_due_at=now, now=now)
        reopened = await repo.conversation(conversation_id)
    assert reopened is not None and reopened.status is ConversationStatus.QUEUED


async def test_a_claim_and_an_assignment_racing_on_postgresql_have_one_winner(
    postgres: Database,
) -> None:
    desk = desk_on(postgres)
    for round_ in range(20):
        conversation_id = await queued(postgres, f"c-{round_}")
        claimer, target = await agents(postgres, f"ana-{round_}", f"bo-{round_}")
        results = await asyncio.gather(
            desk.claim(conversation_id, claimer),
            # The auto-assigner's call: anyone may assign an unowned conversation.
            desk.assign(conversation_id, target, target),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        async with postgres.read() as repo:
            final = await repo.conversation(conversation_id)
        assert final is not None and final.status is ConversationStatus.ASSIGNED
        assert len(winners) == 1, (round_, results)
        # The loser saw the other's win either before it acted or when it acted.
        assert all(isinstance(r, AlreadyClaimed | NotYours) for r in losers), losers
        assert winners[0].assignee_id == final.assignee_id  # type: ignore[union-attr]


async def test_a_unit_tells_the_inbox_of_a_conversation_once_after_its_messages(
    database: Database,
) -> None:
    conversation_id = await queued(database)
    [ana] = await agents(database, "ana")
    events = EventBus()
    outbox = OutboxDispatcher(
        db=database, channels={}, events=events, policy=RetryPolicy(), clock=utc_now
    )
    units = Units(db=database, outbox=outbox, events=events, clock=utc_now)
    async with events.subscribe() as feed:
        async with units.write() as w:
            await transitions.label(w, conversation_id, tags=["refund"])
            conversation = await w.repo.conversation(conversation_id)
            assert conversation is not None
            note = await transitions.note(w, conversation, ana, "Checking the order.")
            await transitions.label(w, conversation_id, priority=Priority.HIGH)
        seen = [await asyncio.wait_for(feed.get(), 5) for _ in range(2)]
        assert events.published == 2
    added, changed = seen
    assert isinstance(added, MessageAdded) and added.message_id == note.id
    # The last state, once: whoever opens the conversation sees both changes.
    assert isinstance(changed, ConversationChanged) and changed.status == "queued"
    async with database.read() as repo:
        stored = await repo.conversation(conversation_id)
    assert stored is not None and stored.tags == ("refund",) and stored.priority is Priority.HIGH
