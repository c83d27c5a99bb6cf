"""Every change of a conversation's state, in one place.

Each function applies one transition inside a unit of work (``router.desk.work``):
the storage step is a conditional UPDATE that reports whether it happened, so
two agents, two nodes, or an agent and the auto-assigner can never both win;
what the change causes (a message to the customer, events) goes into the unit
and happens after its commit. Who may do what is the desk's business
(``router.desk.actions``); handing off to people is ``router.desk.handoff``'s.

    bot ──hand off──► queued ──claim/assign──► assigned ──resolve──► resolved
     └──────────claim──────────────┘  ▲   └──assign(None)──► queued      │
                                      └────────────reopen────────────────┘
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.questions import asks_the_customer
from channels.base import Attachment, ChannelAddress
from router.conversations import AuthorKind, ConversationStatus, Direction, Priority
from router.delivery.events import AgentAlert, ConversationChanged, MessageAdded
from router.desk.work import Work
from router.storage import Agent, Conversation, Message, Scheduled

if TYPE_CHECKING:  # they call transitions: passed in, never imported at run time
    from router.desk.aftercare import Aftercare
    from router.desk.handoff import Handoffs
    from router.desk.promises import Promises

__all__ = [
    "assign",
    "claim",
    "escalate",
    "label",
    "merge",
    "note",
    "queue",
    "rate",
    "reopen",
    "reply",
    "resolve",
    "schedule",
    "split",
    "transfer",
]

logger = logging.getLogger(__name__)


async def _changed(w: Work, conversation_id: int) -> Conversation:
    changed = await w.repo.conversation(conversation_id)
    assert changed is not None
    w.publish(ConversationChanged(changed.id, changed.status.value, changed.assignee_id))
    return changed


async def _current(w: Work, conversation_id: int) -> Conversation:
    current = await w.repo.conversation(conversation_id)
    assert current is not None
    return current


async def queue(
    w: Work,
    conversation_id: int,
    *,
    priority: Priority,
    due: datetime | None,
    team: str | None,
    tags: Sequence[str] | None = None,
    from_status: ConversationStatus = ConversationStatus.BOT,
) -> bool:
    """Hand a conversation to people: queued with its priority, promise and team (and
    the routing rule's ``tags``), from the bot or, reopened, from resolved; False if it
    is not in ``from_status`` any more (someone claimed it meanwhile). What the customer
    is told and who is alerted is ``router.desk.handoff``'s."""
    if not await w.repo.hand_off(
        conversation_id,
        priority=priority,
        sla_due_at=due,
        now=w.now,
        from_status=from_status,
        team=team,
    ):
        return False
    if tags is not None:
        await w.repo.set_tags(conversation_id, tags, w.now)
    w.publish(ConversationChanged(conversation_id, ConversationStatus.QUEUED.value, None))
    return True


async def claim(w: Work, conversation_id: int, agent: Agent) -> Conversation | None:
    """``agent`` takes an unowned conversation (the bot's or the queue's); None if
    someone else owns it or it is resolved."""
    if not await w.repo.claim(conversation_id, agent_id=agent.id, now=w.now):
        return None
    logger.info("conversation %s claimed by agent %s", conversation_id, agent.name)
    return await _changed(w, conversation_id)


async def assign(
    w: Work, conversation: Conversation, target: Agent | None, *, by: Agent | None = None
) -> Conversation | None:
    """Give an open conversation to ``target`` (None: back to the queue), only if its
    owner is still the one ``conversation`` shows; None otherwise. The new owner is
    told (unless they took it themselves)."""
    if not await w.repo.assign(
        conversation.id,
        expected=conversation.assignee_id,
        agent_id=None if target is None else target.id,
        now=w.now,
    ):
        return None
    if target is not None and target.id != conversation.assignee_id:
        w.publish(
            AgentAlert(
                agent_id=target.id,
                conversation_id=conversation.id,
                kind="assigned",
                text=f"Conversation #{conversation.id} was handed to you"
                + (f" by {by.name}" if by is not None and by.id != target.id else ""),
            )
        )
    return await _changed(w, conversation.id)


async def transfer(w: Work, conversation: Conversation, team: str | None) -> Conversation | None:
    """Move an open conversation to ``team``'s queue (None: everyone's), unowned, only
    if its owner is still the one ``conversation`` shows; None otherwise."""
    if not await w.repo.set_team(
        conversation.id, team=team, expected=conversation.assignee_id, now=w.now
    ):
        return None
    logger.info("conversation %s moved to team %s", conversation.id, team or "-")
    return await _changed(w, conversation.id)


async def label(
    w: Work,
    conversation_id: int,
    *,
    tags: Sequence[str] | None = None,
    priority: Priority | None = None,
) -> Conversation:
    """Tags and priority: bookkeeping any agent (or a canned reply) may do, not a
    change of hands."""
    if tags is not None:
        await w.repo.set_tags(conversation_id, tags, w.now)
    if priority is not None:
        await w.repo.set_priority(conversation_id, priority, w.now)
    return await _changed(w, conversation_id)


async def escalate(w: Work, conversation: Conversation, priority: Priority) -> Conversation:
    """A promise about to break raised the conversation's priority (its last change by a
    person stays what it was)."""
    await w.repo.set_promise_fields(conversation.id, priority=priority.value)
    return await _changed(w, conversation.id)


async def rate(w: Work, conversation: Conversation, *, score: int, comment: str | None) -> bool:
    """The customer's rating, once: False if rated already or never asked."""
    if not await w.repo.record_rating(conversation.id, score=score, comment=comment, now=w.now):
        return False
    await _changed(w, conversation.id)
    return True


async def schedule(
    w: Work,
    conversation: Conversation,
    agent: Agent,
    *,
    kind: str,
    due_at: datetime,
    text: str | None,
) -> Scheduled:
    """A follow-up to the customer or a reminder to ``agent`` at ``due_at``: the
    conversation's Later list changes."""
    item = await w.repo.schedule(
        conversation_id=conversation.id,
        kind=kind,
        due_at=due_at,
        text=text,
        agent_id=agent.id,
        created_by=agent.id,
        now=w.now,
    )
    await _changed(w, conversation.id)
    return item


async def reply(
    w: Work,
    conversation: Conversation,
    agent: Agent,
    text: str,
    promises: Promises,
    *,
    wait_for_customer: bool | None = None,
    attachments: Sequence[Attachment] = (),
) -> Message:
    """An agent's answer, through the customer's channel, with any files they attached:
    it keeps (or misses) the response promise; one that asks the customer something
    (``wait_for_customer``, by default: it ends in a question mark) stops the resolution
    clock until they write."""
    message = await w.say(
        conversation,
        text,
        author=AuthorKind.AGENT,
        kind="agent",
        agent_id=agent.id,
        attachments=attachments,
    )
    await w.repo.mark_first_response(conversation.id, w.now)
    waits = asks_the_customer(text) if wait_for_customer is None else wait_for_customer
    await promises.agent_replied(w, conversation, waits_on_customer=waits)
    return message


async def note(w: Work, conversation: Conversation, agent: Agent, text: str) -> Message:
    """An internal note: seen by agents, never sent to the customer."""
    message = await w.repo.add_message(
        conversation_id=conversation.id,
        direction=Direction.NOTE,
        author_kind=AuthorKind.AGENT,
        author_agent_id=agent.id,
        kind="note",
        text=text,
        channel=conversation.reply_to.channel,
        now=w.now,
    )
    w.publish(MessageAdded(conversation.id, message.id, "agent", "note"))
    return message


async def resolve(
    w: Work,
    conversation: Conversation,
    aftercare: Aftercare,
    *,
    owner: int | None,
    quietly: bool = False,
) -> Conversation | None:
    """Close an open conversation (still owned by ``owner`` when given): its promises
    end, the customer is asked for a rating (or told it is closed) and a follow-up is
    scheduled (``router.desk.aftercare``); None if it was resolved already or changed hands.
    ``quietly`` (a conversation merged away): the promises end, the customer hears
    nothing and nothing is scheduled."""
    if not await w.repo.resolve(conversation.id, w.now, assignee_id=owner):
        return None
    if quietly:
        await aftercare.promises.resolved(w, conversation)
    else:
        await aftercare.resolved(w, conversation)
    return await _changed(w, conversation.id)


async def reopen(
    w: Work, conversation: Conversation, handoffs: Handoffs, *, assignee: Agent | None
) -> Conversation | None:
    """Open a resolved conversation again with a fresh promise: for ``assignee``, or
    handed off to the queue (with the handoff's context); None if it was not resolved
    (any more)."""
    if assignee is None:
        if not await handoffs.hand_off(
            w,
            conversation,
            reason="reopened",
            language=conversation.language,
            notify=False,  # an agent's decision; the customer hears from the agent
            from_status=ConversationStatus.RESOLVED,
        ):
            return None
        return await _current(w, conversation.id)
    priority = max(conversation.priority, Priority.NORMAL)
    policy = handoffs.promises.choose(conversation, priority)
    due = policy.due(priority, w.now)
    if not await w.repo.reopen(conversation.id, agent_id=assignee.id, sla_due_at=due, now=w.now):
        return None
    await handoffs.promises.start(w, conversation, policy, priority)
    return await _changed(w, conversation.id)


async def split(
    w: Work, conversation: Conversation, message: Message, agent: Agent, handoffs: Handoffs
) -> Conversation:
    """Move a customer message threaded into the wrong conversation into a new one of
    its own, handed off to people with the usual context (email: a new question in an
    old thread). Later replies to that message follow it."""
    assert message.external_id is not None
    subject = message.extras.get("subject")
    created = await w.repo.create_conversation(
        contact_id=conversation.contact_id,
        address=ChannelAddress(
            channel=message.channel,
            recipient_id=conversation.reply_to.recipient_id,
            thread_id=message.external_id,
        ),
        subject=subject if isinstance(subject, str) else None,
        now=w.now,
    )
    await w.repo.move_message(message.id, created.id)
    await note(
        w, created, agent, f"Split off from conversation #{conversation.id} by {agent.name}."
    )
    await handoffs.hand_off(
        w,
        created,
        reason="split",
        language=conversation.language,
        trigger=message,
        notify=False,  # the customer wrote one mail; an agent answers it
        context={"split_from": conversation.id},
    )
    logger.info(
        "message %s split off conversation %s into %s by agent %s",
        message.id,
        conversation.id,
        created.id,
        agent.name,
    )
    await _changed(w, conversation.id)
    return await _current(w, created.id)  # queued: the hand-off said so


async def merge(
    w: Work,
    source: Conversation,
    message: Message,
    target: Conversation,
    agent: Agent,
    aftercare: Aftercare,
) -> Conversation:
    """Move a message that named ``target`` (its sender was not on it) into it: an agent
    knows it is the same customer. Its sender becomes a participant there; replies still
    go to the customer's address. ``source`` is resolved if nothing else is in it."""
    await w.repo.move_message(message.id, target.id)
    await note(
        w,
        target,
        agent,
        f"Message from {message.extras.get('sender', 'another sender')} merged in from "
        f"conversation #{source.id} by {agent.name}.",
    )
    left = [m for m in await w.repo.messages(source.id) if m.id != message.id]
    closed = None
    if not any(m.direction is Direction.IN for m in left):
        # Closed like any other (its promises end: no warning, breach or alert mail for
        # a conversation nobody can see), without a word to the customer.
        closed = await resolve(w, source, aftercare, owner=None, quietly=True)
    logger.info(
        "message %s merged from conversation %s into %s by agent %s",
        message.id,
        source.id,
        target.id,
        agent.name,
    )
    w.publish(MessageAdded(target.id, message.id, "customer", "in"))
    if closed is None:
        await _changed(w, source.id)
    return await _changed(w, target.id)
