"""Ingest: every inbound message, from any channel, in one transaction.

dedup → contact → conversation → message → bot decision → outbox rows; then,
after commit, the replies go out and events are published.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot import Bot, BotContext, Decision, DecisionKind
from channels.base import ChannelAddress, InboundMessage, InboundReceipt
from router.conversations import AuthorKind, ConversationStatus, Direction
from router.delivery.events import MessageAdded
from router.desk.aftercare import Aftercare
from router.desk.handoff import Handoffs
from router.desk.inbound import reuses_id, storable, under_its_own_id
from router.desk.placement import Place, Placement
from router.desk.rules import ChannelRules, fail_bounced
from router.desk.work import Units, Work
from router.metrics import BOT_DECISIONS, INGEST_SECONDS, INGESTED
from router.storage import Conversation, Message, Repositories

__all__ = ["ChannelRules", "IntakeClosed", "Router"]

_DEFAULT_RULES = ChannelRules()

logger = logging.getLogger(__name__)


class IntakeClosed(RuntimeError):
    """The router is shutting down and takes no new messages; the source should re-send later."""


class Router:
    """Takes inbound messages from every channel and decides what happens next."""

    def __init__(
        self,
        *,
        units: Units,
        bot: Bot,
        handoffs: Handoffs,
        rules: dict[str, ChannelRules] | None = None,
        aftercare: Aftercare | None = None,
        reopen_window: timedelta = timedelta(0),
    ) -> None:
        """``reopen_window``: a customer writing this soon after their conversation was
        resolved reopens it (zero: never)."""
        self._units = units
        self._placement = Placement(aftercare=aftercare, reopen_window=reopen_window)
        self._bot = bot
        self._handoffs = handoffs
        self._aftercare = aftercare
        self._rules = rules or {}
        # The bot reads by meaning with a model whose engine releases the GIL: it thinks
        # on its own thread, never on the event loop's (one thread: one decision at a
        # time, so nothing in bot/ or knowledge/ has to be thread-safe for two).
        self._thinking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaydesk-bot")
        self._closed = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def ingest(self, inbound: InboundMessage) -> InboundReceipt:
        """Store ``inbound`` and act on it; returns once everything is committed."""
        if self._closed:
            raise IntakeClosed("RelayDesk is shutting down")
        inbound = storable(inbound)
        self._in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        try:
            receipt = await self._ingest(inbound)
            if not receipt.duplicate:
                INGESTED.labels(inbound.channel).inc()
                INGEST_SECONDS.labels(inbound.channel).observe(time.perf_counter() - started)
            return receipt
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def close(self) -> None:
        """Stop taking messages and wait for those in flight to commit."""
        self._closed = True
        await self._idle.wait()
        self._thinking.shutdown(wait=False)

    async def _ingest(self, inbound: InboundMessage) -> InboundReceipt:
        if inbound.edit:
            edited = await self._edit(inbound)
            if edited is not None:
                return edited
            # An edit of a message we never stored: take it as a new message.
        # The unique (channel, external_id) index is the dedup check: asking first would
        # cost a round trip on every message to save one on the rare duplicate.
        raced = False
        while True:
            try:
                async with self._units.write() as w:
                    return await self._store(w, inbound)
            except IntegrityError:
                async with self._units.db.read() as repo:
                    stored = await repo.stored_fingerprint(inbound.channel, inbound.external_id)
                    if stored is not None and not reuses_id(inbound, stored[1]):
                        return await self._duplicate(repo, inbound, stored[0])
                if stored is not None:
                    inbound = under_its_own_id(inbound, stored[0])
                    continue
                if raced:
                    raise
                # Another task created this sender's contact at the same moment; again.
                raced = True

    async def _edit(self, inbound: InboundMessage) -> InboundReceipt | None:
        async with self._units.write() as w:
            stored = await w.repo.edit_message(
                inbound.channel, inbound.external_id, text=inbound.text, now=w.now
            )
            if stored is None:
                return None
            message_id, conversation_id = stored
            w.publish(MessageAdded(conversation_id, message_id, "customer", "in"))
        logger.info(
            "conversation %s: message %s edited by the customer", conversation_id, message_id
        )
        return InboundReceipt(conversation_id=conversation_id, message_id=message_id)

    async def _duplicate(
        self, repo: Repositories, inbound: InboundMessage, message_id: int
    ) -> InboundReceipt:
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

    async def _store(self, w: Work, inbound: InboundMessage) -> InboundReceipt:
        """The message's way through, in named steps: where it belongs and who wrote it
        (``router.desk.placement``), the message kept, then what follows."""
        place, conversation = await self._placement.place(w, inbound)
        message, reply_to = await self._keep(w, inbound, conversation, place)
        await self._follow(w, inbound, conversation, message, reply_to, place)
        return InboundReceipt(conversation_id=conversation.id, message_id=message.id)

    async def _keep(
        self, w: Work, inbound: InboundMessage, conversation: Conversation, place: Place
    ) -> tuple[Message, ChannelAddress]:
        """Store the message with what the pipeline learned of it; returns it and where
        replies to it go."""
        extras: dict[str, Any] = dict(inbound.extras)
        reply_to = inbound.address
        if inbound.thread_hints is not None:
            extras["sender"] = inbound.sender.external_id
            if inbound.thread_hints.participants:
                extras["participants"] = list(inbound.thread_hints.participants)
            if place.joined:
                extras["joined"] = place.joined
            if place.claimed is not None:
                extras["claimed_conversation"] = place.claimed
            if place.contact_id != conversation.contact_id:
                # Someone else on the thread (a Cc) wrote: the replies still go to the
                # customer; an agent who wants otherwise says so.
                reply_to = conversation.reply_to
        elif place.linked:
            extras["joined"] = place.joined
        if place.remark:
            extras["closing_remark"] = True
        if inbound.automated:
            extras["automated"] = inbound.automated
        if inbound.flag:
            extras["flag"] = inbound.flag
        message = await w.repo.add_message(
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_kind=AuthorKind.CUSTOMER,
            text=inbound.text,
            html=inbound.html,
            channel=inbound.channel,
            external_id=inbound.external_id,
            extras=extras or None,
            attachments=inbound.attachments,
            now=w.now,
        )
        w.publish(MessageAdded(conversation.id, message.id, "customer", "in"))
        return message, reply_to

    async def _follow(
        self,
        w: Work,
        inbound: InboundMessage,
        conversation: Conversation,
        message: Message,
        reply_to: ChannelAddress,
        place: Place,
    ) -> None:
        """What follows the stored message: a remark kept, a reopening, an answer to the
        aftercare, machine-made mail kept quiet, or the bot or the people."""
        repo, now = w.repo, w.now
        if place.remark:
            if conversation.csat_score is not None and not conversation.csat_comment:
                await repo.add_rating_comment(conversation.id, inbound.text.strip()[:2000])
            logger.info(
                "conversation %s: closing remark stored, the conversation stays resolved",
                conversation.id,
            )
            return
        if place.reopening:
            # A person takes it again, with a fresh promise the customer is told of.
            previous = conversation.assignee_id
            await self._handoffs.hand_off(
                w,
                replace(conversation, reply_to=reply_to),
                reason="reopened_by_customer",
                language=conversation.language,
                trigger=message,
                from_status=ConversationStatus.RESOLVED,
                context={"previous_assignee": previous} if previous is not None else None,
            )
            logger.info("conversation %s reopened by the customer", conversation.id)
            await repo.touch_conversation(
                conversation.id, reply_to=reply_to, language=None, now=now
            )
            return
        if place.answer is not None:
            assert self._aftercare is not None
            await self._aftercare.take_answer(
                w, conversation, message, place.answer, inbound.extras.get("choice")
            )
            await repo.touch_conversation(
                conversation.id, reply_to=conversation.reply_to, language=None, now=now
            )
            return
        if inbound.automated:
            # Machine-made mail is kept and shown, never answered: no loops with
            # auto-responders, no replies to bounces. A bounce of ours fails that reply.
            w.publish(*await fail_bounced(repo, inbound))
            logger.info(
                "conversation %s: automated message %s (%s) stored, not answered",
                conversation.id,
                message.id,
                inbound.automated,
            )
            await repo.touch_conversation(
                conversation.id, reply_to=conversation.reply_to, language=None, now=now
            )
            return
        await self._bot_or_people(w, inbound, conversation, message, reply_to)

    async def _bot_or_people(
        self,
        w: Work,
        inbound: InboundMessage,
        conversation: Conversation,
        message: Message,
        reply_to: ChannelAddress,
    ) -> None:
        """With the bot, it decides and acts; with people, they are told."""
        # Replies to this message go where the customer wrote from (email: threaded
        # to this very mail).
        conversation = replace(conversation, reply_to=reply_to)
        language: str | None = None
        misses: int | None = None
        if conversation.status is ConversationStatus.BOT:
            decision = await self._decide(w, conversation, inbound)
            BOT_DECISIONS.labels(decision.kind.value, decision.reason).inc()
            language = decision.language
            misses = conversation.bot_misses + 1 if decision.is_miss else 0
            logger.info(
                "conversation %s: bot decided %s (%s)",
                conversation.id,
                decision.kind.value,
                decision.reason,
            )
            await self._act(w, conversation, message, decision)
        else:
            # A person is on it (or about to be): the bot stays silent, agents are notified,
            # and the promise clock hears of it.
            await self._handoffs.promises.customer_wrote(w, conversation)
            logger.info(
                "conversation %s is %s: message %s left for agents",
                conversation.id,
                conversation.status.value,
                message.id,
            )
        await w.repo.touch_conversation(
            conversation.id, reply_to=reply_to, language=language, bot_misses=misses, now=w.now
        )

    async def _decide(
        self, w: Work, conversation: Conversation, inbound: InboundMessage
    ) -> Decision:
        """The bot's one decision, with what the channel and its rules already know."""
        rules = self._rules.get(inbound.channel, _DEFAULT_RULES)
        hand_off, may_reply = await rules.before_the_bot(w.repo, conversation, inbound, w.now)
        decide = functools.partial(
            self._bot.decide,
            inbound.text,
            context=BotContext(
                consecutive_misses=conversation.bot_misses,
                language=conversation.language or inbound.extras.get("language"),
                min_answer_score=rules.min_answer_score,
                clarify=rules.clarify,
                hand_off=hand_off,
                may_reply=may_reply,
                quiet_reason="auto_reply_limit" if inbound.readable else "flagged",
            ),
            choice=inbound.extras.get("choice"),
            command=inbound.command,
            attachments=len(inbound.attachments),
        )
        return await asyncio.get_running_loop().run_in_executor(self._thinking, decide)

    async def _act(
        self, w: Work, conversation: Conversation, trigger: Message, decision: Decision
    ) -> None:
        if decision.kind is DecisionKind.HANDOFF:
            await self._handoffs.hand_off(
                w,
                conversation,
                reason=decision.reason,
                language=decision.language,
                trigger=trigger,
                urgent=decision.urgent,
                candidates=_candidates(decision),
                notify=decision.notify,
            )
            return
        await w.say(
            conversation,
            decision.text,
            author=AuthorKind.BOT,
            kind=decision.kind.value,
            entry_id=decision.entry_id,
            choices=decision.choices,
            extras={"reason": decision.reason, "candidates": _candidates(decision)},
        )


def _candidates(decision: Decision) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "score": c.score,
            "question": c.question,
            "components": dict(c.components),
            "tags": list(c.tags),
        }
        for c in decision.candidates
    ]
