"""Where an inbound message belongs, the pipeline's first steps: the conversation it
threads into (an open one, the resolved one whose survey or follow-up it answers, one
it reopens or names), and who wrote it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.signals import is_closing_remark
from channels.base import InboundMessage
from router.desk.aftercare import Aftercare
from router.desk.rules import find_thread
from router.desk.work import Work
from router.storage import Conversation

__all__ = ["Place", "Placement"]

logger = logging.getLogger(__name__)


@dataclass
class Place:
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


class Placement:
    def __init__(self, *, aftercare: Aftercare | None, reopen_window: timedelta) -> None:
        """``reopen_window``: a customer writing this soon after their conversation was
        resolved reopens it (zero: never)."""
        self._aftercare = aftercare
        self._reopen_window = reopen_window

    async def place(self, w: Work, inbound: InboundMessage) -> tuple[Place, Conversation]:
        """Where ``inbound`` goes (a new conversation if nothing else), and why."""
        place = await self._thread(w, inbound)
        await self._answer_to_aftercare(w, inbound, place)
        await self._written_again(w, inbound, place)
        await self._sender(w, inbound, place)
        conversation = place.conversation or await self._open(w, inbound, place)
        return place, conversation

    async def _thread(self, w: Work, inbound: InboundMessage) -> Place:
        """The open conversation this message belongs to: by the channel's threading
        hints (email: headers, ticket numbers), else by its thread key."""
        if inbound.thread_hints is None:
            return Place(
                conversation=await w.repo.open_conversation(
                    inbound.channel, inbound.address.thread_key
                )
            )
        contact_id = await w.repo.contact_for(inbound.sender, w.now)
        match = await find_thread(w.repo, inbound, contact_id, w.now)
        return Place(
            conversation=match.conversation,
            contact_id=contact_id,
            joined=match.joined,
            claimed=match.claimed,
            resolved=match.resolved,
        )

    async def _answer_to_aftercare(self, w: Work, inbound: InboundMessage, place: Place) -> None:
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

    async def _written_again(self, w: Work, inbound: InboundMessage, place: Place) -> None:
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

    async def _sender(self, w: Work, inbound: InboundMessage, place: Place) -> None:
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

    async def _open(self, w: Work, inbound: InboundMessage, place: Place) -> Conversation:
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


def _only_closes(inbound: InboundMessage) -> bool:
    """A thank-you, an "ok", an emoji: nothing asked, nothing attached."""
    return not inbound.attachments and is_closing_remark(inbound.text)
