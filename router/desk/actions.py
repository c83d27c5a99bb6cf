"""The human desk: who may do what to a conversation, then the transition.

Every action checks permissions and the conversation's state here, applies one
transition (``router.desk.transitions``) in one unit of work, and reports a refusal as
a ``DeskError`` (``router.errors``, which also maps it to HTTP, once, for the API
and the inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from channels.base import Attachment
from router.conversations import ConversationStatus, Direction, Priority
from router.delivery.events import AgentTyping
from router.desk import transitions
from router.desk.contacts import ContactActions
from router.desk.later import LaterActions
from router.desk.reading import ConversationDetail, found
from router.desk.work import Work
from router.errors import (
    AlreadyClaimed,
    AlreadyResolved,
    MessageNotFound,
    NotAllowed,
    NotYours,
    StaleView,
    TeamNotFound,
)
from router.storage import (
    Agent,
    Conversation,
    Message,
    Repositories,
)
from router.storage.canned_queries import CannedReply

__all__ = ["ConversationDetail", "HumanDesk"]

logger = logging.getLogger(__name__)


class HumanDesk(LaterActions, ContactActions):
    """Agent actions on conversations (reading: ``router.desk.reading``; scheduling:
    ``.later``; a contact's data: ``.contacts``). Every change commits before its event
    is published."""

    # -- acting --------------------------------------------------------------------

    async def claim(self, conversation_id: int, agent: Agent) -> Conversation:
        """Take ownership. Of two agents claiming at once, exactly one wins."""
        async with self._units.write() as w:
            await self._visible(w.repo, conversation_id, agent)
            claimed = await transitions.claim(w, conversation_id, agent)
            if claimed is not None:
                await w.audit(agent, "claim", "conversation", conversation_id)
            conversation = claimed or await found(w.repo, conversation_id)
        if claimed is None and conversation.assignee_id != agent.id:
            if conversation.status is ConversationStatus.RESOLVED:
                raise AlreadyResolved(f"conversation {conversation_id} is resolved")
            raise AlreadyClaimed(f"conversation {conversation_id} is already claimed")
        return conversation

    async def reply(
        self,
        conversation_id: int,
        agent: Agent,
        text: str,
        *,
        seen_message_id: int | None = None,
        wait_for_customer: bool | None = None,
        macro: CannedReply | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Message:
        """Send ``text`` to the customer through their channel; only the owner may.

        With ``seen_message_id`` (the newest message the agent had on screen), the reply
        is refused with ``StaleView`` if anyone wrote since: never a double answer.
        ``wait_for_customer`` stops the resolution clock until the customer writes (by
        default when the reply ends in a question mark). A ``macro``'s tags, priority
        and resolution are applied with the reply, in one transaction. ``attachments``
        (files already kept, ``router.delivery.files``) go with the reply.
        """
        async with self._units.write() as w:
            conversation = await _owned(w.repo, conversation_id, agent)
            if seen_message_id is not None:
                newer = [
                    m
                    for m in await w.repo.messages(conversation_id)
                    if m.id > seen_message_id and m.direction is not Direction.NOTE
                ]
                if newer:
                    raise StaleView(
                        f"{len(newer)} new message(s) since you opened the conversation"
                    )
            message = await transitions.reply(
                w,
                conversation,
                agent,
                text,
                self._handoffs.promises,
                wait_for_customer=wait_for_customer,
                attachments=attachments,
            )
            if macro is not None:
                await self._apply_macro(w, conversation, agent, macro)
            return message

    async def _apply_macro(
        self, w: Work, conversation: Conversation, agent: Agent, macro: CannedReply
    ) -> None:
        tags = sorted({*conversation.tags, *macro.tags})[:20] if macro.tags else None
        await w.audit(
            agent,
            "macro",
            "conversation",
            conversation.id,
            macro=macro.id,
            title=macro.title,
            tags=list(macro.tags) or None,
            priority=macro.priority.label if macro.priority is not None else None,
            resolve=macro.resolve or None,
        )
        current = await transitions.label(w, conversation.id, tags=tags, priority=macro.priority)
        if macro.resolve and await transitions.resolve(w, current, self._aftercare, owner=agent.id):
            await w.audit(agent, "resolve", "conversation", conversation.id)

    async def typing(self, conversation_id: int, agent: Agent) -> None:
        """Tell the customer a person is writing; only the owner's typing is shown."""
        async with self._units.db.read() as repo:
            conversation = await _owned(repo, conversation_id, agent)
        await self._units.events.publish(
            AgentTyping(
                conversation_id,
                agent.name,
                conversation.reply_to.channel,
                conversation.reply_to.recipient_id,
                node=self._units.events.node_id,
            )
        )

    async def note(self, conversation_id: int, agent: Agent, text: str) -> Message:
        """An internal note: seen by agents, never sent to the customer."""
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            return await transitions.note(w, conversation, agent, text)

    async def resolve(self, conversation_id: int, agent: Agent) -> Conversation:
        """Close the conversation and tell the customer; their next message opens a new one."""
        async with self._units.write() as w:
            conversation = await _owned(w.repo, conversation_id, agent)
            resolved = await transitions.resolve(w, conversation, self._aftercare, owner=agent.id)
            if resolved is not None:
                await w.audit(agent, "resolve", "conversation", conversation_id)
        if resolved is None:
            raise NotYours(f"conversation {conversation_id} changed hands or closed meanwhile")
        logger.info("conversation %s resolved by agent %s", conversation_id, agent.name)
        return resolved

    async def split(self, conversation_id: int, message_id: int, agent: Agent) -> Conversation:
        """A customer message threaded into the wrong conversation gets its own, queued."""
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            message = await _customer_message(w.repo, conversation_id, message_id)
            if message.external_id is None:
                raise MessageNotFound(f"message {message_id} cannot be split off")
            split = await transitions.split(w, conversation, message, agent, self._handoffs)
            await w.audit(
                agent, "split", "conversation", conversation_id, message=message_id, into=split.id
            )
            return split

    async def merge(self, conversation_id: int, message_id: int, agent: Agent) -> Conversation:
        """A mail whose sender was not on the conversation it named (``claimed_conversation``)
        moves into it: the agent knows it is the same customer."""
        async with self._units.write() as w:
            source = await self._visible(w.repo, conversation_id, agent)
            message = await _customer_message(w.repo, conversation_id, message_id)
            claimed = message.extras.get("claimed_conversation")
            if not isinstance(claimed, int):
                raise MessageNotFound(f"message {message_id} names no other conversation")
            target = await self._visible(w.repo, claimed, agent)
            merged = await transitions.merge(w, source, message, target, agent, self._aftercare)
            await w.audit(
                agent, "merge", "conversation", conversation_id, message=message_id, into=target.id
            )
            return merged

    async def resend(self, conversation_id: int, delivery_id: int, agent: Agent) -> None:
        """Send a dead reply again (the relay is back, the address was fixed)."""
        async with self._units.write() as w:
            await self._visible(w.repo, conversation_id, agent)
            if not await self._units.outbox.resend(w.repo, delivery_id, conversation_id):
                raise MessageNotFound(
                    f"no undelivered reply {delivery_id} in conversation {conversation_id}"
                )
            await w.audit(agent, "resend", "conversation", conversation_id, delivery=delivery_id)
        logger.info(
            "conversation %s: dead reply %s sent again by agent %s",
            conversation_id,
            delivery_id,
            agent.name,
        )
        self._units.outbox.wake()

    async def assign(
        self, conversation_id: int, agent: Agent, target: Agent | None
    ) -> Conversation:
        """Give a conversation to ``target`` (None: back to the queue). The owner, an admin,
        or anyone for an unowned conversation may. If it changed hands meanwhile (a claim
        a moment earlier), nothing is overwritten: ``AlreadyClaimed``."""
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            if conversation.status is ConversationStatus.RESOLVED:
                raise AlreadyResolved(f"conversation {conversation_id} is resolved")
            owner = conversation.assignee_id
            if owner not in (None, agent.id) and not agent.is_admin:
                raise NotYours(f"conversation {conversation_id} belongs to someone else")
            if target is not None and not target.active:
                raise NotAllowed(f"{target.name} is disabled")
            changed = await transitions.assign(w, conversation, target, by=agent)
            if changed is not None:
                await w.audit(
                    agent,
                    "assign",
                    "conversation",
                    conversation_id,
                    to=target.name if target else "queue",
                    previous=owner,
                )
        if changed is None:
            raise AlreadyClaimed(f"conversation {conversation_id} changed hands meanwhile")
        logger.info(
            "conversation %s assigned to %s by %s",
            conversation_id,
            "the queue" if target is None else target.name,
            agent.name,
        )
        return changed

    async def transfer(
        self, conversation_id: int, agent: Agent, team: str | None, target: Agent | None = None
    ) -> Conversation:
        """Move a conversation to ``team``'s queue (None: everyone's), unowned, or on to
        ``target`` there. Who may: as for ``assign``."""
        if team is not None and team not in self._handoffs.routing.teams:
            raise TeamNotFound(f"no team {team!r}")
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            if conversation.status is ConversationStatus.RESOLVED:
                raise AlreadyResolved(f"conversation {conversation_id} is resolved")
            if conversation.status is ConversationStatus.BOT:
                raise NotAllowed(f"conversation {conversation_id} is with the bot; claim it first")
            owner = conversation.assignee_id
            if owner not in (None, agent.id) and not agent.is_admin:
                raise NotYours(f"conversation {conversation_id} belongs to someone else")
            if target is not None and not target.active:
                raise NotAllowed(f"{target.name} is disabled")
            changed = await transitions.transfer(w, conversation, team)
            if changed is not None and target is not None:
                changed = await transitions.assign(w, changed, target, by=agent)
            if changed is not None:
                await w.audit(
                    agent,
                    "transfer",
                    "conversation",
                    conversation_id,
                    team=team,
                    previous_team=conversation.team,
                    to=target.name if target else "queue",
                    previous=owner,
                )
        if changed is None:
            raise AlreadyClaimed(f"conversation {conversation_id} changed hands meanwhile")
        logger.info(
            "conversation %s moved to team %s%s by %s",
            conversation_id,
            team or "-",
            f" for {target.name}" if target else "",
            agent.name,
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
        """Tags and priority: bookkeeping any agent may do, not a change of hands."""
        async with self._units.write() as w:
            await self._visible(w.repo, conversation_id, agent)
            clean = None
            if tags is not None:
                clean = sorted({t.strip()[:40] for t in tags if t.strip()})[:20]
            changed = await transitions.label(w, conversation_id, tags=clean, priority=priority)
            await w.audit(
                agent,
                "update",
                "conversation",
                conversation_id,
                tags=list(changed.tags) if tags is not None else None,
                priority=changed.priority.label if priority is not None else None,
            )
        return changed


async def _owned(repo: Repositories, conversation_id: int, agent: Agent) -> Conversation:
    conversation = await found(repo, conversation_id)
    if conversation.status is ConversationStatus.RESOLVED:
        raise AlreadyResolved(f"conversation {conversation_id} is resolved")
    if conversation.assignee_id != agent.id:
        raise NotYours(f"conversation {conversation_id} is not assigned to you; claim it first")
    return conversation


async def _customer_message(repo: Repositories, conversation_id: int, message_id: int) -> Message:
    message = next((m for m in await repo.messages(conversation_id) if m.id == message_id), None)
    if message is None or message.direction is not Direction.IN:
        raise MessageNotFound(f"no customer message {message_id} in conversation {conversation_id}")
    return message
