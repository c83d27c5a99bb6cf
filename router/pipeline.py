"""Ingest: every inbound message, from any channel, in one transaction.

dedup → contact → conversation → message → bot decision → outbox rows; then,
after commit, events are published and the outbox dispatcher is woken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot import Bot, BotContext, Decision, DecisionKind
from channels.base import ChannelAddress, InboundMessage, InboundReceipt
from router.conversations import AuthorKind, ConversationStatus, Direction, Priority
from router.events import ConversationChanged, Event, EventBus, MessageAdded
from router.handoff import SlaPolicy
from router.storage import Conversation, Database, Message, Repositories

__all__ = ["IntakeClosed", "Router"]

logger = logging.getLogger(__name__)


class IntakeClosed(RuntimeError):
    """The router is shutting down and takes no new messages; the source should re-send later."""


class Router:
    """Takes inbound messages from every channel and decides what happens next."""

    def __init__(
        self,
        *,
        db: Database,
        bot: Bot,
        events: EventBus,
        sla: SlaPolicy,
        wake_outbox: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._bot = bot
        self._events = events
        self._sla = sla
        self._wake_outbox = wake_outbox
        self._clock = clock
        self._closed = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def bot(self) -> Bot:
        return self._bot

    async def ingest(self, inbound: InboundMessage) -> InboundReceipt:
        """Store ``inbound`` and act on it; returns once everything is committed."""
        if self._closed:
            raise IntakeClosed("RelayDesk is shutting down")
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._ingest(inbound)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def close(self) -> None:
        """Stop taking messages and wait for those in flight to commit."""
        self._closed = True
        await self._idle.wait()

    async def _ingest(self, inbound: InboundMessage) -> InboundReceipt:
        events: list[Event] = []
        try:
            async with self._db.write() as repo:
                duplicate = await self._duplicate(repo, inbound)
                if duplicate is not None:
                    return duplicate
                receipt, queued_replies = await self._store(repo, inbound, events)
        except IntegrityError:
            # Another node or task stored the same message between our check and insert.
            async with self._db.read() as repo:
                duplicate = await self._duplicate(repo, inbound)
            if duplicate is None:
                raise
            return duplicate
        if queued_replies:
            self._wake_outbox()
        await self._events.publish(*events)
        return receipt

    async def _duplicate(
        self, repo: Repositories, inbound: InboundMessage
    ) -> InboundReceipt | None:
        message_id = await repo.message_exists(inbound.channel, inbound.external_id)
        if message_id is None:
            return None
        conversation_id = await repo.conversation_of_message(message_id)
        assert conversation_id is not None
        logger.info(
            "duplicate %s message %s ignored (conversation %s)",
            inbound.channel,
            inbound.external_id,
            conversation_id,
        )
        return InboundReceipt(
            conversation_id=conversation_id, message_id=message_id, duplicate=True
        )

    async def _store(
        self, repo: Repositories, inbound: InboundMessage, events: list[Event]
    ) -> tuple[InboundReceipt, bool]:
        now = self._clock()
        sender = inbound.sender
        contact_id = await repo.contact_for_identity(sender.channel, sender.external_id)
        if contact_id is None:
            contact_id = await repo.create_contact(
                channel=sender.channel,
                external_id=sender.external_id,
                display_name=sender.display_name,
                email=sender.email,
                now=now,
            )
        conversation = await repo.open_conversation(inbound.channel, inbound.address.thread_key)
        if conversation is None:
            conversation = await repo.create_conversation(
                contact_id=contact_id,
                address=inbound.address,
                subject=inbound.extras.get("subject"),
                now=now,
            )
            logger.info(
                "conversation %s opened on %s for contact %s",
                conversation.id,
                inbound.channel,
                contact_id,
            )
        message = await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_kind=AuthorKind.CUSTOMER,
            text=inbound.text,
            html=inbound.html,
            channel=inbound.channel,
            external_id=inbound.external_id,
            extras=dict(inbound.extras) or None,
            now=now,
        )
        events.append(MessageAdded(conversation.id, message.id, "customer", "in"))
        queued = False
        language: str | None = None
        if conversation.status is ConversationStatus.BOT:
            decision = self._bot.decide(
                inbound.text,
                context=BotContext(consecutive_misses=conversation.bot_misses),
                choice=inbound.extras.get("choice"),
            )
            language = decision.language
            logger.info(
                "conversation %s: bot decided %s (%s)",
                conversation.id,
                decision.kind.value,
                decision.reason,
            )
            await self._act(repo, conversation, message, inbound.address, decision, events, now)
            queued = True
        else:
            # A person is on it (or about to be): the bot stays silent, agents are notified.
            logger.info(
                "conversation %s is %s: message %s left for agents",
                conversation.id,
                conversation.status.value,
                message.id,
            )
        await repo.touch_conversation(
            conversation.id, reply_to=inbound.address, language=language, now=now
        )
        receipt = InboundReceipt(conversation_id=conversation.id, message_id=message.id)
        return receipt, queued

    async def _act(
        self,
        repo: Repositories,
        conversation: Conversation,
        trigger: Message,
        route: ChannelAddress,
        decision: Decision,
        events: list[Event],
        now: datetime,
    ) -> None:
        if decision.kind is DecisionKind.HANDOFF:
            await self._hand_off(repo, conversation, trigger, route, decision, events, now)
            return
        misses = conversation.bot_misses + 1 if decision.is_miss else 0
        await repo.set_bot_misses(conversation.id, misses)
        reply = await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_kind=AuthorKind.BOT,
            kind=decision.kind.value,
            text=decision.text,
            channel=route.channel,
            entry_id=decision.entry_id,
            choices=decision.choices,
            extras={"reason": decision.reason, "candidates": _candidates(decision)},
            now=now,
        )
        await repo.enqueue(message=reply, address=route, choices=decision.choices, now=now)
        events.append(MessageAdded(conversation.id, reply.id, "bot", "out"))

    async def _hand_off(
        self,
        repo: Repositories,
        conversation: Conversation,
        trigger: Message,
        route: ChannelAddress,
        decision: Decision,
        events: list[Event],
        now: datetime,
    ) -> None:
        priority = Priority.HIGH if decision.urgent else Priority.NORMAL
        due = self._sla.due(priority, now)
        earlier = [
            {
                "id": c.id,
                "channel": c.channel,
                "status": c.status.value,
                "created_at": c.created_at.isoformat(),
            }
            for c in await repo.contact_conversations(conversation.contact_id)
            if c.id != conversation.id
        ]
        await repo.hand_off(conversation.id, priority=priority, sla_due_at=due, now=now)
        await repo.add_handoff(
            conversation_id=conversation.id,
            message_id=trigger.id,
            reason=decision.reason,
            language=decision.language,
            priority=priority,
            candidates=_candidates(decision),
            context={
                "customer_text": trigger.text,
                "channel": trigger.channel,
                "bot_misses": conversation.bot_misses,
                "earlier_conversations": earlier,
            },
            sla_due_at=due,
            now=now,
        )
        notice = self._bot.texts.handoff_notice(
            decision.language,
            ticket=conversation.id,
            due=due.astimezone(self._sla.zone),
            now=now.astimezone(self._sla.zone),
        )
        ack = await repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_kind=AuthorKind.SYSTEM,
            kind="ack",
            text=notice,
            channel=route.channel,
            extras={"sla_due_at": due.isoformat(), "reason": decision.reason},
            now=now,
        )
        await repo.enqueue(message=ack, address=route, choices=(), now=now)
        logger.info(
            "conversation %s handed off (%s), priority %s, due %s",
            conversation.id,
            decision.reason,
            priority.label,
            due.isoformat(),
        )
        events.append(MessageAdded(conversation.id, ack.id, "system", "out"))
        events.append(ConversationChanged(conversation.id, ConversationStatus.QUEUED.value, None))


def _candidates(decision: Decision) -> list[dict[str, Any]]:
    return [{"id": c.id, "score": c.score, "question": c.question} for c in decision.candidates]
