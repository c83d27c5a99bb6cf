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
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot import Bot, BotContext, Decision, DecisionKind
from bot.signals import is_closing_remark
from channels.base import ChannelAddress, InboundMessage, InboundReceipt
from router.conversations import AuthorKind, ConversationStatus, Direction
from router.delivery.events import MessageAdded
from router.desk.aftercare import Aftercare
from router.desk.handoff import Handoffs
from router.desk.inbound import storable
from router.desk.rules import ChannelRules, fail_bounced, find_thread
from router.desk.work import Units, Work
from router.metrics import BOT_DECISIONS, INGEST_SECONDS, INGESTED
from router.storage import Conversation, Message, Repositories

__all__ = ["ChannelRules", "IntakeClosed", "Router"]

_DEFAULT_RULES = ChannelRules()

logger = logging.getLogger(__name__)


class IntakeClosed(RuntimeError):
    """The router is shutting down and takes no new messages; the source should re-send later."""


@dataclass
class _Place:
    """Where an inbound message goes and why: the pipeline's first steps fill it in."""

    conversation: Conversation | None = None
    contact_id: int | None = None
    joined: str | None = None  # how it was threaded, for the agents
    claimed: int | None = None  # a conversation it names but its sender is not on
    resolved: Conversation | None = None  # the resolved conversation it may belong to
    answer: str | None = None  # an answer to that one's survey or follow-up
    reopening: bool = False
    linked: bool = False
    remark: bool = False  # a closing remark on that one


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
        self._reopen_window = reopen_window
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
                    if stored is not None and not _reuses_id(inbound, stored[1]):
                        return await self._duplicate(repo, inbound, stored[0])
                if stored is not None:
                    inbound = _under_its_own_id(inbound, stored[0])
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
        """The message's way through, in named steps: where it belongs, who wrote it,
        the conversation, the message kept, then what follows."""
        place = await self._thread(w, inbound)
        await self._answer_to_aftercare(w, inbound, place)
        await self._written_again(w, inbound, place)
        await self._sender(w, inbound, place)
        conversation = place.conversation or await self._open(w, inbound, place)
        message, reply_to = await self._keep(w, inbound, conversation, place)
        await self._follow(w, inbound, conversation, message, reply_to, place)
        return InboundReceipt(conversation_id=conversation.id, message_id=message.id)

    async def _thread(self, w: Work, inbound: InboundMessage) -> _Place:
        """The open conversation this message belongs to: by the channel's threading
        hints (email: headers, ticket numbers), else by its thread key."""
        if inbound.thread_hints is None:
            return _Place(
                conversation=await w.repo.open_conversation(
                    inbound.channel, inbound.address.thread_key
                )
            )
        contact_id = await w.repo.contact_for(inbound.sender, w.now)
        match = await find_thread(w.repo, inbound, contact_id, w.now)
        return _Place(
            conversation=match.conversation,
            contact_id=contact_id,
            joined=match.joined,
            claimed=match.claimed,
            resolved=match.resolved,
        )

    async def _answer_to_aftercare(self, w: Work, inbound: InboundMessage, place: _Place) -> None:
        """No open conversation: an answer to what a resolved one asked (a rating, a
        reply to a follow-up) goes there."""
        if place.conversation is not None or self._aftercare is None or inbound.automated:
            return
        since = w.now - self._aftercare.policies.answer_window
        place.resolved = place.resolved or await w.repo.awaiting_answer(
            inbound.channel, inbound.address.thread_key, since
        )
        if place.resolved is None:
            return
        place.answer = self._aftercare.answers(
            place.resolved,
            inbound.text,
            choice=inbound.extras.get("choice"),
            comment=bool(inbound.extras.get("survey_comment")),
            now=w.now,
        )
        if place.answer is not None:
            place.conversation = place.resolved

    async def _written_again(self, w: Work, inbound: InboundMessage, place: _Place) -> None:
        """Written again after the resolution: soon after, a closing remark stays a
        comment and anything else opens the conversation with the whole story again;
        later, a new conversation names it."""
        if (
            place.conversation is not None
            or inbound.automated
            or inbound.command not in (None, "human")  # a /start greets, it does not reopen
            or self._reopen_window <= timedelta(0)
        ):
            return
        earlier = place.resolved or await w.repo.last_resolved(
            inbound.channel, inbound.address.thread_key
        )
        if earlier is None or earlier.resolved_at is None:
            return
        if earlier.resolved_at >= w.now - self._reopen_window and _only_closes(inbound):
            # "回复很快，谢谢", "ok thanks 👍": a comment on the resolved conversation.
            place.conversation, place.remark = earlier, True
            how = f"closing remark on resolved conversation #{earlier.id}"
        elif earlier.resolved_at >= w.now - self._reopen_window:
            place.conversation, place.reopening = earlier, True
            how = f"reopens resolved conversation #{earlier.id}"
        else:
            how = f"follows conversation #{earlier.id}, resolved {earlier.resolved_at:%Y-%m-%d}"
        place.joined = f"{place.joined}; {how}" if place.joined else how
        place.linked = True

    async def _sender(self, w: Work, inbound: InboundMessage, place: _Place) -> None:
        """Make sure we know the sender of a new conversation, or someone new writing
        into one (an email Cc); keep what the channel says of them."""
        sender = inbound.sender
        if place.contact_id is None and (
            place.conversation is None
            or place.conversation.reply_to.recipient_id != sender.external_id
        ):
            place.contact_id = await w.repo.contact_for(sender, w.now)
        if sender.attributes:
            if place.contact_id is None:
                place.contact_id = await w.repo.contact_for(sender, w.now)
            await w.repo.merge_attributes(place.contact_id, sender.attributes)

    async def _open(self, w: Work, inbound: InboundMessage, place: _Place) -> Conversation:
        assert place.contact_id is not None
        conversation = await w.repo.create_conversation(
            contact_id=place.contact_id,
            address=inbound.address,
            subject=inbound.extras.get("subject"),
            topic=inbound.thread_hints.topic if inbound.thread_hints else None,
            now=w.now,
        )
        place.joined = f"new conversation; {place.joined}" if place.joined else "new conversation"
        logger.info(
            "conversation %s opened on %s for contact %s",
            conversation.id,
            inbound.channel,
            place.contact_id,
        )
        return conversation

    async def _keep(
        self, w: Work, inbound: InboundMessage, conversation: Conversation, place: _Place
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
        place: _Place,
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


def _only_closes(inbound: InboundMessage) -> bool:
    """A thank-you, an "ok", an emoji: nothing asked, nothing attached."""
    return not inbound.attachments and is_closing_remark(inbound.text)


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


def _reuses_id(inbound: InboundMessage, stored: str | None) -> bool:
    """Whether ``inbound`` is a different message under an id already stored (a
    stranger's mail that took a customer's Message-ID first), not a re-sent copy."""
    fingerprint = inbound.extras.get("fingerprint")
    return (
        fingerprint is not None
        and stored is not None
        and stored != fingerprint
        and not inbound.external_id.endswith("#" + fingerprint)
    )


def _under_its_own_id(inbound: InboundMessage, first: int) -> InboundMessage:
    """``inbound`` keyed by its id and fingerprint, so its own re-sent copies are still
    duplicates; flagged for a person, since someone sent two mails under one id."""
    fingerprint = inbound.extras["fingerprint"]
    logger.warning(
        "%s message %s reuses the id of stored message %s with other content: stored too",
        inbound.channel,
        inbound.external_id,
        first,
    )
    flag = (
        f"another mail was stored first under this Message-ID (message {first}): "
        "check which of the two is genuine"
    )
    return replace(
        inbound,
        external_id=f"{inbound.external_id}#{fingerprint}",
        flag=f"{inbound.flag}; {flag}" if inbound.flag else flag,
    )
