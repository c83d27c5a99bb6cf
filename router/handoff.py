"""The human side: SLA promises, the queue, claims, replies, notes, resolution."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import BotTexts
from channels.base import ChannelAddress
from router.conversations import AuthorKind, ConversationStatus, Direction, Priority
from router.events import AgentTyping, ConversationChanged, Event, EventBus, MessageAdded
from router.outbox import OutboxDispatcher
from router.storage import (
    Agent,
    Contact,
    Conversation,
    Database,
    Handoff,
    Identity,
    Message,
    OutboxItem,
    Repositories,
)

__all__ = [
    "ConversationDetail",
    "ConversationNotFound",
    "DeskError",
    "HumanDesk",
    "MessageNotFound",
    "NotAllowed",
    "NotYours",
    "SlaPolicy",
    "StaleView",
]

logger = logging.getLogger(__name__)


class DeskError(Exception):
    """An agent action that cannot be done; ``code`` is stable for API clients."""

    code = "conflict"


class ConversationNotFound(DeskError):
    code = "not_found"


class NotYours(DeskError):
    code = "not_assigned_to_you"


class AlreadyClaimed(DeskError):
    code = "already_claimed"


class AlreadyResolved(DeskError):
    code = "already_resolved"


class MessageNotFound(DeskError):
    code = "message_not_found"


class StaleView(DeskError):
    """Something happened since the agent opened the conversation: look before answering."""

    code = "stale"


class NotAllowed(DeskError):
    code = "forbidden"


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """First-response promises per priority, and the desk's time zone for telling customers."""

    first_response: Mapping[Priority, timedelta]
    zone: ZoneInfo

    def due(self, priority: Priority, now: datetime) -> datetime:
        return now + self.first_response[priority]

    @classmethod
    def from_minutes(cls, minutes: Mapping[str, int], zone: ZoneInfo) -> SlaPolicy:
        return cls(
            first_response={Priority.parse(k): timedelta(minutes=v) for k, v in minutes.items()},
            zone=zone,
        )


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    """Everything an agent needs to answer without asking the customer to repeat themselves."""

    conversation: Conversation
    contact: Contact | None
    identities: tuple[Identity, ...]
    messages: tuple[Message, ...]
    handoffs: tuple[Handoff, ...]
    deliveries: tuple[OutboxItem, ...]
    other_conversations: tuple[Conversation, ...]
    agent_names: Mapping[int, str]


class HumanDesk:
    """Agent actions on conversations. Every change commits before its event is published."""

    def __init__(
        self,
        *,
        db: Database,
        events: EventBus,
        texts: BotTexts,
        outbox: OutboxDispatcher,
        clock: Callable[[], datetime],
        sla: SlaPolicy | None = None,
    ) -> None:
        self._db = db
        self._sla = sla
        self._events = events
        self._texts = texts
        self._outbox = outbox
        self._clock = clock

    async def queue(
        self, *, statuses: tuple[ConversationStatus, ...], assignee_id: int | None, limit: int
    ) -> tuple[list[Conversation], dict[int, Message | None]]:
        async with self._db.read() as repo:
            conversations = await repo.list_conversations(
                statuses=statuses, assignee_id=assignee_id, limit=limit
            )
            last = {c.id: await repo.last_message(c.id) for c in conversations}
        return conversations, last

    async def detail(self, conversation_id: int) -> ConversationDetail:
        async with self._db.read() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            messages = await repo.messages(conversation_id)
            others = [
                c
                for c in await repo.contact_conversations(conversation.contact_id)
                if c.id != conversation_id
            ]
            agent_ids = {m.author_agent_id for m in messages if m.author_agent_id is not None}
            if conversation.assignee_id is not None:
                agent_ids.add(conversation.assignee_id)
            return ConversationDetail(
                conversation=conversation,
                contact=await repo.contact(conversation.contact_id),
                identities=tuple(await repo.identities(conversation.contact_id)),
                messages=tuple(messages),
                handoffs=tuple(await repo.handoffs(conversation_id)),
                deliveries=tuple(await repo.outbox_for_conversation(conversation_id)),
                other_conversations=tuple(others),
                agent_names=await repo.agent_names(agent_ids),
            )

    async def claim(self, conversation_id: int, agent: Agent) -> Conversation:
        """Take ownership. Of two agents claiming at once, exactly one wins."""
        now = self._clock()
        async with self._db.write() as repo:
            won = await repo.claim(conversation_id, agent_id=agent.id, now=now)
            conversation = await repo.conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        if not won:
            if conversation.assignee_id == agent.id:
                return conversation
            if conversation.status is ConversationStatus.RESOLVED:
                raise AlreadyResolved(f"conversation {conversation_id} is resolved")
            raise AlreadyClaimed(f"conversation {conversation_id} is already claimed")
        logger.info("conversation %s claimed by agent %s", conversation_id, agent.name)
        await self._events.publish(
            ConversationChanged(conversation_id, conversation.status.value, agent.id)
        )
        return conversation

    async def reply(
        self, conversation_id: int, agent: Agent, text: str, *, seen_message_id: int | None = None
    ) -> Message:
        """Send ``text`` to the customer through their channel; only the owner may.

        With ``seen_message_id`` (the newest message the agent had on screen), the reply
        is refused with ``StaleView`` if anyone wrote since: never a double answer.
        """
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await self._owned(repo, conversation_id, agent)
            if seen_message_id is not None:
                newer = [
                    m
                    for m in await repo.messages(conversation_id)
                    if m.id > seen_message_id and m.direction is not Direction.NOTE
                ]
                if newer:
                    raise StaleView(
                        f"{len(newer)} new message(s) since you opened the conversation"
                    )
            message = await repo.add_message(
                conversation_id=conversation_id,
                direction=Direction.OUT,
                author_kind=AuthorKind.AGENT,
                author_agent_id=agent.id,
                kind="agent",
                text=text,
                channel=conversation.reply_to.channel,
                now=now,
            )
            item = await self._outbox.enqueue(
                repo, message, conversation.reply_to, now, subject=conversation.subject
            )
            await repo.mark_first_response(conversation_id, now)
        self._outbox.deliver_now([item])
        await self._events.publish(
            MessageAdded(conversation_id, message.id, message.author_kind.value, "out")
        )
        return message

    async def typing(self, conversation_id: int, agent: Agent) -> None:
        """Tell the customer a person is writing; only the owner's typing is shown."""
        async with self._db.read() as repo:
            conversation = await self._owned(repo, conversation_id, agent)
        await self._events.publish(
            AgentTyping(
                conversation_id,
                agent.name,
                conversation.reply_to.channel,
                conversation.reply_to.recipient_id,
            )
        )

    async def note(self, conversation_id: int, agent: Agent, text: str) -> Message:
        """An internal note: seen by agents, never sent to the customer."""
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            message = await repo.add_message(
                conversation_id=conversation_id,
                direction=Direction.NOTE,
                author_kind=AuthorKind.AGENT,
                author_agent_id=agent.id,
                kind="note",
                text=text,
                channel=conversation.reply_to.channel,
                now=now,
            )
        await self._events.publish(MessageAdded(conversation_id, message.id, "agent", "note"))
        return message

    async def resolve(self, conversation_id: int, agent: Agent) -> Conversation:
        """Close the conversation and tell the customer; their next message opens a new one."""
        now = self._clock()
        events: list[Event] = []
        async with self._db.write() as repo:
            conversation = await self._owned(repo, conversation_id, agent)
            await repo.resolve(conversation_id, now)
            message = await repo.add_message(
                conversation_id=conversation_id,
                direction=Direction.OUT,
                author_kind=AuthorKind.SYSTEM,
                kind="system",
                text=BotTexts.pick(self._texts.resolved, conversation.language or "en"),
                channel=conversation.reply_to.channel,
                now=now,
            )
            item = await self._outbox.enqueue(
                repo, message, conversation.reply_to, now, subject=conversation.subject
            )
            resolved = await repo.conversation(conversation_id)
            assert resolved is not None
            events += [
                MessageAdded(conversation_id, message.id, "system", "out"),
                ConversationChanged(conversation_id, resolved.status.value, resolved.assignee_id),
            ]
        logger.info("conversation %s resolved by agent %s", conversation_id, agent.name)
        self._outbox.deliver_now([item])
        await self._events.publish(*events)
        return resolved

    async def split(self, conversation_id: int, message_id: int, agent: Agent) -> Conversation:
        """Move a customer message that was threaded into the wrong conversation into a
        new one of its own, queued for a person (email: a new question in an old thread)."""
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            message = next(
                (m for m in await repo.messages(conversation_id) if m.id == message_id), None
            )
            if message is None or message.direction is not Direction.IN:
                raise MessageNotFound(
                    f"no customer message {message_id} in conversation {conversation_id}"
                )
            if message.external_id is None:
                raise MessageNotFound(f"message {message_id} cannot be split off")
            address = ChannelAddress(
                channel=message.channel,
                recipient_id=conversation.reply_to.recipient_id,
                thread_id=message.external_id,
            )
            subject = message.extras.get("subject")
            created = await repo.create_conversation(
                contact_id=conversation.contact_id,
                address=address,
                subject=subject if isinstance(subject, str) else None,
                now=now,
            )
            await repo.move_message(message_id, created.id)
            due = self._due(Priority.NORMAL, now)
            await repo.hand_off(created.id, priority=Priority.NORMAL, sla_due_at=due, now=now)
            await repo.add_message(
                conversation_id=created.id,
                direction=Direction.NOTE,
                author_kind=AuthorKind.AGENT,
                author_agent_id=agent.id,
                kind="note",
                text=f"Split off from conversation #{conversation_id} by {agent.name}.",
                channel=message.channel,
                now=now,
            )
            split = await repo.conversation(created.id)
            assert split is not None
        logger.info(
            "message %s split off conversation %s into %s by agent %s",
            message_id,
            conversation_id,
            split.id,
            agent.name,
        )
        await self._events.publish(
            ConversationChanged(split.id, split.status.value, None),
            ConversationChanged(
                conversation_id, conversation.status.value, conversation.assignee_id
            ),
        )
        return split

    async def merge(self, conversation_id: int, message_id: int, agent: Agent) -> Conversation:
        """An agent's answer to a mail that named a conversation its sender is not on
        (``claimed_conversation``): it is the customer after all, so the message moves
        into the conversation it named and its sender becomes a participant there.
        The conversation it leaves is resolved if nothing else is in it."""
        now = self._clock()
        async with self._db.write() as repo:
            source = await repo.conversation(conversation_id)
            if source is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            message = next(
                (m for m in await repo.messages(conversation_id) if m.id == message_id), None
            )
            claimed = message.extras.get("claimed_conversation") if message else None
            if message is None or message.direction is not Direction.IN:
                raise MessageNotFound(
                    f"no customer message {message_id} in conversation {conversation_id}"
                )
            if not isinstance(claimed, int):
                raise MessageNotFound(f"message {message_id} names no other conversation")
            target = await repo.conversation(claimed)
            if target is None:
                raise ConversationNotFound(f"no conversation {claimed}")
            await repo.move_message(message_id, target.id)
            await repo.add_message(
                conversation_id=target.id,
                direction=Direction.NOTE,
                author_kind=AuthorKind.AGENT,
                author_agent_id=agent.id,
                kind="note",
                text=(
                    f"Message from {message.extras.get('sender', 'another sender')} merged in "
                    f"from conversation #{conversation_id} by {agent.name}."
                ),
                channel=message.channel,
                now=now,
            )
            left = [m for m in await repo.messages(conversation_id) if m.id != message_id]
            if not any(m.direction is Direction.IN for m in left):
                await repo.resolve(conversation_id, now)
            merged = await repo.conversation(target.id)
            emptied = await repo.conversation(conversation_id)
            assert merged is not None and emptied is not None
        logger.info(
            "message %s merged from conversation %s into %s by agent %s",
            message_id,
            conversation_id,
            merged.id,
            agent.name,
        )
        await self._events.publish(
            MessageAdded(merged.id, message_id, "customer", "in"),
            ConversationChanged(merged.id, merged.status.value, merged.assignee_id),
            ConversationChanged(emptied.id, emptied.status.value, emptied.assignee_id),
        )
        return merged

    async def resend(self, conversation_id: int, delivery_id: int, agent: Agent) -> None:
        """Send a dead reply again (the relay is back, the address was fixed)."""
        async with self._db.write() as repo:
            if await repo.conversation(conversation_id) is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            if not await self._outbox.resend(repo, delivery_id, conversation_id):
                raise MessageNotFound(
                    f"no undelivered reply {delivery_id} in conversation {conversation_id}"
                )
        logger.info(
            "conversation %s: dead reply %s sent again by agent %s",
            conversation_id,
            delivery_id,
            agent.name,
        )
        self._outbox.wake()

    async def assign(
        self, conversation_id: int, agent: Agent, target: Agent | None
    ) -> Conversation:
        """Give a conversation to ``target`` (None: back to the queue). The owner, an admin,
        or anyone for an unowned conversation may."""
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            if conversation.status is ConversationStatus.RESOLVED:
                raise AlreadyResolved(f"conversation {conversation_id} is resolved")
            owner = conversation.assignee_id
            if owner not in (None, agent.id) and not agent.is_admin:
                raise NotYours(f"conversation {conversation_id} belongs to someone else")
            if target is not None and not target.active:
                raise NotAllowed(f"{target.name} is disabled")
            await repo.assign(conversation_id, None if target is None else target.id, now)
            changed = await repo.conversation(conversation_id)
            assert changed is not None
        logger.info(
            "conversation %s assigned to %s by %s",
            conversation_id,
            "the queue" if target is None else target.name,
            agent.name,
        )
        await self._events.publish(
            ConversationChanged(conversation_id, changed.status.value, changed.assignee_id)
        )
        return changed

    async def update(
        self,
        conversation_id: int,
        agent: Agent,
        *,
        tags: list[str] | None = None,
        priority: Priority | None = None,
    ) -> Conversation:
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            if tags is not None:
                clean = sorted({t.strip()[:40] for t in tags if t.strip()})[:20]
                await repo.set_tags(conversation_id, clean, now)
            if priority is not None:
                await repo.set_priority(conversation_id, priority, now)
            changed = await repo.conversation(conversation_id)
            assert changed is not None
        await self._events.publish(
            ConversationChanged(conversation_id, changed.status.value, changed.assignee_id)
        )
        return changed

    async def reopen(
        self, conversation_id: int, agent: Agent, *, assignee: Agent | None = None
    ) -> Conversation:
        """Open a resolved conversation again, for ``assignee`` or the queue."""
        now = self._clock()
        async with self._db.write() as repo:
            conversation = await repo.conversation(conversation_id)
            if conversation is None:
                raise ConversationNotFound(f"no conversation {conversation_id}")
            if conversation.status is not ConversationStatus.RESOLVED:
                return conversation
            due = self._due(conversation.priority, now)
            await repo.reopen(
                conversation_id,
                agent_id=None if assignee is None else assignee.id,
                sla_due_at=due,
                now=now,
            )
            changed = await repo.conversation(conversation_id)
            assert changed is not None
        logger.info("conversation %s reopened by %s", conversation_id, agent.name)
        await self._events.publish(
            ConversationChanged(conversation_id, changed.status.value, changed.assignee_id)
        )
        return changed

    def _due(self, priority: Priority, now: datetime) -> datetime:
        """The promise for work an agent puts back in the queue (split off, reopened)."""
        return self._sla.due(priority, now) if self._sla else now + timedelta(hours=4)

    async def _owned(self, repo: Repositories, conversation_id: int, agent: Agent) -> Conversation:
        conversation = await repo.conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(f"no conversation {conversation_id}")
        if conversation.status is ConversationStatus.RESOLVED:
            raise AlreadyResolved(f"conversation {conversation_id} is resolved")
        if conversation.assignee_id != agent.id:
            raise NotYours(f"conversation {conversation_id} is not assigned to you; claim it first")
        return conversation
