"""A unit of work: one transaction, and what it leaves to do once it has committed.

Every change to a conversation happens inside ``async with units.write() as w:``.
The unit holds the repositories and the time, collects the outgoing messages and
events the change causes, and only after the commit hands the messages to the
outbox dispatcher and publishes the events: nobody hears of a change that was
rolled back, and no reply is lost to a crash between the two (it is in the outbox).

``Work.say`` is the one place an outgoing message is written, whoever its author
and whatever its kind: stored, queued in the outbox, announced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.base import Attachment, Choice
from router import audit
from router.conversations import AuthorKind, Direction
from router.delivery.events import ConversationChanged, Event, EventBus, MessageAdded
from router.delivery.outbox import OutboxDispatcher
from router.storage import Agent, Conversation, Database, Message, OutboxItem, Repositories

__all__ = ["Units", "Work"]


@dataclass
class Work:
    """One transaction's repositories, its time, and its effects after commit."""

    repo: Repositories
    now: datetime
    _outbox: OutboxDispatcher
    outgoing: list[OutboxItem] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    async def audit(
        self,
        agent: Agent | None,
        action: str,
        target: str,
        target_id: int | None,
        **detail: Any,
    ) -> None:
        """Record ``action`` in the audit log with this unit (``router.audit.record``)."""
        await audit.record(self.repo, self.now, agent, action, target, target_id, **detail)

    def publish(self, *events: Event) -> None:
        """Publish ``events`` once this unit has committed."""
        self.events.extend(events)

    def effects(self) -> list[Event]:
        """What the unit publishes, in order; a conversation's ``ConversationChanged``
        once, last, with its final state (whichever transitions of the unit said so)."""
        changed: dict[int, Event] = {}
        others: list[Event] = []
        for event in self.events:
            if isinstance(event, ConversationChanged):
                changed.pop(event.conversation_id, None)
                changed[event.conversation_id] = event
            else:
                others.append(event)
        return [*others, *changed.values()]

    async def say(
        self,
        conversation: Conversation,
        text: str,
        *,
        author: AuthorKind,
        kind: str,
        agent_id: int | None = None,
        entry_id: str | None = None,
        choices: Iterable[Choice] = (),
        extras: dict[str, Any] | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Message:
        """Write an outgoing message to the customer, queue it for their channel (the
        conversation's reply route) and announce it. The only writer of outgoing messages."""
        route = conversation.reply_to
        message = await self.repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_kind=author,
            author_agent_id=agent_id,
            kind=kind,
            text=text,
            channel=route.channel,
            entry_id=entry_id,
            choices=tuple(choices),
            extras=extras,
            attachments=attachments,
            now=self.now,
        )
        self.outgoing.append(
            await self._outbox.enqueue(
                self.repo, message, route, self.now, subject=conversation.subject
            )
        )
        self.events.append(MessageAdded(conversation.id, message.id, author.value, "out"))
        return message

    async def say_many(
        self, said: Sequence[tuple[Conversation, str]], *, author: AuthorKind, kind: str
    ) -> list[Message]:
        """``say`` for several plain messages (no choices, no extras) at once: what
        scheduled work sends by the hundred, in two statements instead of two each."""
        if not said:
            return []
        messages = await self.repo.add_outgoing(
            [(c.id, text) for c, text in said],
            author_kind=author,
            kind=kind,
            channel_of={c.id: c.reply_to.channel for c, _ in said},
            now=self.now,
        )
        self.outgoing.extend(
            await self._outbox.enqueue_many(
                self.repo,
                [(m, c.reply_to, c.subject) for (c, _), m in zip(said, messages, strict=True)],
                self.now,
            )
        )
        self.events.extend(
            MessageAdded(c.id, m.id, author.value, "out")
            for (c, _), m in zip(said, messages, strict=True)
        )
        return messages


class Units:
    """Makes units of work on one database; after each commit, delivers and publishes."""

    def __init__(
        self,
        *,
        db: Database,
        outbox: OutboxDispatcher,
        events: EventBus,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.events = events
        self.clock = clock

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Work]:
        """A unit of work in one transaction; its effects follow the commit."""
        async with self.db.write() as repo:
            work = Work(repo=repo, now=self.clock(), _outbox=self.outbox)
            yield work
            # Other nodes hear of it when, and only when, this commits.
            if work.events:
                await self.events.notify_in(repo.session, work.effects())
        await self.finish(work)

    async def finish(self, work: Work) -> None:
        """What a committed unit leaves to do: send its replies, publish its events here."""
        self.outbox.deliver_now(work.outgoing)
        if work.events:
            await self.events.publish_local(*work.effects())
