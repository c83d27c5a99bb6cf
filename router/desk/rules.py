"""Per-channel front-line rules, and how a message without a thread id finds its thread.

Email is the channel that needs them: threading by reference, ticket and subject;
bounces that fail our replies; a cap on automatic replies against loops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.base import InboundMessage
from router.conversations import ConversationStatus
from router.delivery.events import DeliveryFailed, Event
from router.storage import Conversation, Repositories

__all__ = [
    "ChannelRules",
    "ThreadMatch",
    "fail_bounced",
    "find_thread",
    "may_auto_reply",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """How the front line behaves on one channel (email is stricter than chat)."""

    # Answer only at or above this score, if it is higher than the bot's own threshold.
    min_answer_score: float | None = None
    # Whether the bot may ask which entry was meant; if not, a person answers.
    clarify: bool = True
    # A customer message after a bot answer goes to a person (email: the answer's
    # footer says that replying reaches one).
    answer_once: bool = False
    # At most this many automatic replies (bot answers, acknowledgements) to one
    # contact within ``auto_reply_window``; past it, a person looks and we stay quiet.
    auto_reply_limit: int | None = None
    auto_reply_window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.auto_reply_limit is not None and self.auto_reply_limit < 0:
            raise ValueError("auto_reply_limit must not be negative")

    async def before_the_bot(
        self,
        repo: Repositories,
        conversation: Conversation,
        inbound: InboundMessage,
        now: datetime,
    ) -> tuple[str | None, bool]:
        """What the bot must know before it reads the message: a reason a person takes it
        whatever it says (None: the bot decides), and whether anything automatic may go
        to the customer now."""
        if inbound.flag:
            hand_off: str | None = "flagged"  # the channel's reason is in the message's extras
        elif self.answer_once and await repo.bot_answered(conversation.id):
            hand_off = "reply_after_answer"
        else:
            hand_off = None
        # Nothing automatic answers what nobody could read (an acknowledgement of a
        # binary blob is noise at best, a reply to a forger at worst), nor a contact who
        # already had the channel's share of automatic replies.
        # Nor a sender whose address failed authentication: an answer would go to
        # whoever the forger named.
        may_reply = (
            inbound.readable
            and inbound.unverified is None
            and await may_auto_reply(repo, conversation, self, now)
        )
        return hand_off, may_reply


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """Where a threaded message belongs: ``conversation`` (None: a new one), why
    (``joined``), and a conversation it named but may not join (``claimed``)."""

    conversation: Conversation | None
    joined: str | None = None
    claimed: int | None = None
    # A resolved conversation of this sender's that the message replies to (a rating,
    # an answer to a follow-up).
    resolved: Conversation | None = None


async def find_thread(
    repo: Repositories, inbound: InboundMessage, contact_id: int, now: datetime
) -> ThreadMatch:
    """Follow the channel's thread hints.

    A reference or a ticket names a conversation; the message joins it only when its
    sender is on it (see ``Repositories.conversation_participants``). Anyone can copy
    a Message-ID or a ticket number; a stranger who does gets a conversation of their
    own, marked with the link they claimed, never the reply meant for the customer.
    """
    hints = inbound.thread_hints
    assert hints is not None
    # Who wrote it: the sender, or From where a Reply-To made the sender someone else
    # (see ``ThreadHints.author``). The writer is who must be on a conversation to join
    # it; a Reply-To that is not on it never becomes its reply route (see the pipeline).
    writer = hints.author or inbound.sender.external_id
    follows: str | None = None
    resolved: Conversation | None = None
    claimed: tuple[int, str] | None = None
    found = await repo.conversation_by_reference(inbound.channel, hints.references)
    if found is not None:
        conversation, reference = found
        # Machine-made mail (a bounce of our reply) may join by reference: it is never
        # answered and never becomes the reply route, and our ids cannot be guessed.
        if not inbound.automated and writer not in await repo.conversation_participants(
            conversation
        ):
            claimed = conversation.id, f"replies to <{reference}>"
        elif conversation.status is not ConversationStatus.RESOLVED:
            return ThreadMatch(conversation, f"replies to <{reference}>")
        else:
            follows = f"replies to <{reference}> of resolved conversation #{conversation.id}"
            resolved = conversation
    if hints.ticket is not None and (claimed is None or claimed[0] != hints.ticket):
        ticketed = await repo.conversation(hints.ticket)
        if ticketed is not None and ticketed.status is not ConversationStatus.RESOLVED:
            if (ticketed.contact_id == contact_id and hints.author is None) or writer in (
                await repo.conversation_participants(ticketed)
            ):
                return ThreadMatch(ticketed, f"ticket #{hints.ticket} in the subject")
            claimed = claimed or (ticketed.id, f"ticket #{hints.ticket} in the subject")
    if hints.topic and hints.topic_window > 0:
        same = await repo.conversation_by_topic(
            contact_id=contact_id,
            channel=inbound.channel,
            topic=hints.topic,
            since=now - timedelta(seconds=hints.topic_window),
        )
        if (
            same is not None
            and (claimed is None or same.id != claimed[0])
            and (hints.author is None or writer in await repo.conversation_participants(same))
        ):
            return ThreadMatch(same, "same sender and subject")
    if claimed is not None:
        conversation_id, how = claimed
        logger.warning(
            "%s message %s %s of conversation %s, but its sender is not on it: "
            "a conversation of its own",
            inbound.channel,
            inbound.external_id,
            how,
            conversation_id,
        )
        return ThreadMatch(
            None,
            f"claims to continue conversation #{conversation_id} ({how}), but the sender "
            "is not on it",
            claimed=conversation_id,
        )
    return ThreadMatch(None, follows, resolved=resolved)


async def fail_bounced(repo: Repositories, inbound: InboundMessage) -> list[Event]:
    """A bounce of our reply: that reply's outbox row goes dead; agents are told."""
    if inbound.automated != "bounce" or inbound.thread_hints is None:
        return []
    events: list[Event] = []
    error = f"bounced: {' '.join(inbound.text.split())[:300]}"
    for item in await repo.mark_bounced(
        inbound.channel, inbound.thread_hints.references, error=error
    ):
        logger.warning("conversation %s: reply %s bounced", item.conversation_id, item.message_id)
        events.append(DeliveryFailed(item.conversation_id, item.id, error, True))
    return events


async def may_auto_reply(
    repo: Repositories, conversation: Conversation, rules: ChannelRules, now: datetime
) -> bool:
    if rules.auto_reply_limit is None:
        return True
    sent = await repo.automatic_replies_since(
        conversation.contact_id, now - rules.auto_reply_window
    )
    if sent < rules.auto_reply_limit:
        return True
    logger.warning(
        "conversation %s: contact %s had %s automatic replies within %s; staying quiet",
        conversation.id,
        conversation.contact_id,
        sent,
        rules.auto_reply_window,
    )
    return False
