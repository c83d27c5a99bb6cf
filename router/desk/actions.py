"""The human desk: who may do what to a conversation, then the transition.

Every action checks permissions and the conversation's state here, applies one
transition (``router.desk.transitions``) in one unit of work, and reports a refusal as
a ``DeskError`` (``router.errors``, which also maps it to HTTP, once, for the API
and the inbox).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot import BotTexts
from channels.base import Attachment
from router.conversations import ConversationStatus, Direction, Priority
from router.delivery.events import AgentTyping, ConversationChanged, Event
from router.desk import transitions
from router.desk.aftercare import Aftercare, Rating
from router.desk.handoff import Handoffs
from router.desk.work import Units, Work
from router.errors import (
    AlreadyClaimed,
    AlreadyResolved,
    ContactNotFound,
    ConversationNotFound,
    MessageNotFound,
    NotAllowed,
    NotYours,
    StaleView,
    TeamNotFound,
)
from router.storage import (
    Agent,
    Contact,
    Conversation,
    Handoff,
    Identity,
    Message,
    OutboxItem,
    Repositories,
    Scheduled,
    SeenBy,
    SlaTimer,
)
from router.storage.canned_queries import CannedReply
from router.storage.privacy_queries import Erased

__all__ = ["ConversationDetail", "HumanDesk"]

logger = logging.getLogger(__name__)


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
    timers: tuple[SlaTimer, ...] = ()
    scheduled: tuple[Scheduled, ...] = ()


class HumanDesk:
    """Agent actions on conversations. Every change commits before its event is published."""

    def __init__(
        self,
        *,
        units: Units,
        handoffs: Handoffs,
        texts: BotTexts,
        aftercare: Aftercare,
        team_visibility: str = "all",
    ) -> None:
        self._units = units
        self._handoffs = handoffs
        self._texts = texts
        self._aftercare = aftercare
        # "own": plain agents see, claim and answer only their teams' conversations.
        self._team_visibility = team_visibility

    def seen_by(self, agent: Agent) -> SeenBy | None:
        """What ``agent`` may see, as a filter; None: everything (teams share their
        queues, or the agent is a lead or an admin)."""
        if self._team_visibility != "own" or agent.role in ("admin", "lead"):
            return None
        return SeenBy(agent.id, tuple(self._handoffs.routing.teams_of(agent.name)))

    async def hears(self, agent: Agent, event: Event) -> bool:
        """Whether ``agent``'s live feed carries ``event``. Where teams keep to their
        own, a plain agent hears only of conversations they see; that one changed
        state (no content) everyone hears, so a screen showing it updates."""
        conversation_id = getattr(event, "conversation_id", None)
        seen_by = self.seen_by(agent)
        if seen_by is None or conversation_id is None or isinstance(event, ConversationChanged):
            return True
        async with self._units.db.read() as repo:
            conversation = await repo.conversation(conversation_id)
        return conversation is not None and seen_by.sees(conversation)

    async def _visible(
        self, repo: Repositories, conversation_id: int, agent: Agent
    ) -> Conversation:
        conversation = await _found(repo, conversation_id)
        seen_by = self.seen_by(agent)
        if seen_by is not None and not seen_by.sees(conversation):
            raise NotAllowed(
                f"conversation {conversation_id} is in another team's queue, not yours"
            )
        return conversation

    # -- reading -------------------------------------------------------------------

    async def queue(
        self,
        *,
        statuses: tuple[ConversationStatus, ...],
        assignee_id: int | None,
        limit: int,
        teams: list[str] | None = None,
        viewer: Agent | None = None,
    ) -> tuple[list[Conversation], dict[int, Message | None]]:
        async with self._units.db.read() as repo:
            conversations = await repo.list_conversations(
                statuses=statuses,
                assignee_id=assignee_id,
                limit=limit,
                teams=teams,
                seen_by=self.seen_by(viewer) if viewer is not None else None,
            )
            last = await repo.last_messages([c.id for c in conversations])
        return conversations, {c.id: last.get(c.id) for c in conversations}

    async def transcript(
        self, conversation_id: int, viewer: Agent
    ) -> tuple[Conversation, list[Message]]:
        """A conversation and its messages, for ``viewer`` (who must be allowed to see it)."""
        async with self._units.db.read() as repo:
            conversation = await self._visible(repo, conversation_id, viewer)
            return conversation, await repo.messages(conversation_id)

    async def detail(self, conversation_id: int, viewer: Agent | None) -> ConversationDetail:
        """Everything about a conversation, for ``viewer`` (None: the desk itself)."""
        async with self._units.db.read() as repo:
            conversation = (
                await self._visible(repo, conversation_id, viewer)
                if viewer is not None
                else await _found(repo, conversation_id)
            )
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
                timers=tuple(await repo.timers(conversation_id)),
                scheduled=tuple(await repo.scheduled_for(conversation_id)),
            )

    # -- acting --------------------------------------------------------------------

    async def claim(self, conversation_id: int, agent: Agent) -> Conversation:
        """Take ownership. Of two agents claiming at once, exactly one wins."""
        async with self._units.write() as w:
            await self._visible(w.repo, conversation_id, agent)
            claimed = await transitions.claim(w, conversation_id, agent)
            if claimed is not None:
                await w.audit(agent, "claim", "conversation", conversation_id)
            conversation = claimed or await _found(w.repo, conversation_id)
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

    # -- later -----------------------------------------------------------------------

    async def scheduled(self, conversation_id: int, agent: Agent) -> list[Scheduled]:
        async with self._units.db.read() as repo:
            await self._visible(repo, conversation_id, agent)
            return await repo.scheduled_for(conversation_id)

    async def schedule(
        self,
        conversation_id: int,
        agent: Agent,
        *,
        kind: str,
        due_at: datetime,
        text: str | None,
    ) -> Scheduled:
        """A follow-up to the customer (sent in business hours) or a reminder to
        ``agent``, at ``due_at``; any agent may, on any conversation."""
        if kind not in ("follow_up", "reminder"):
            raise NotAllowed(f"{kind!r}: schedule a follow_up or a reminder")
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            item = await transitions.schedule(
                w, conversation, agent, kind=kind, due_at=due_at, text=text
            )
            await w.audit(
                agent,
                "schedule",
                "conversation",
                conversation_id,
                kind=kind,
                item=item.id,
                due_at=due_at.isoformat(),
            )
        logger.info(
            "conversation %s: %s %s at %s by %s",
            conversation_id,
            kind,
            item.id,
            due_at.isoformat(),
            agent.name,
        )
        return item

    async def rate(self, conversation_id: int, rating: Rating, *, via: str) -> bool:
        """A customer's rating from outside their channel (the survey link); False if
        the conversation was rated already or never asked."""
        async with self._units.write() as w:
            conversation = await _found(w.repo, conversation_id)
            return await self._aftercare.rate(w, conversation, rating, via=via)

    async def cancel_scheduled(self, conversation_id: int, item_id: int, agent: Agent) -> None:
        async with self._units.write() as w:
            await self._visible(w.repo, conversation_id, agent)
            item = await w.repo.scheduled_item(item_id)
            if item is None or item.conversation_id != conversation_id:
                raise MessageNotFound(f"nothing scheduled as {item_id} here")
            if not await w.repo.finish_scheduled(item_id, now=w.now, status="cancelled"):
                raise StaleView(f"{item.kind} {item_id} was sent or cancelled already")
            await w.audit(agent, "cancel_scheduled", "conversation", conversation_id, item=item_id)
        logger.info(
            "conversation %s: %s %s cancelled by %s",
            conversation_id,
            item.kind,
            item_id,
            agent.name,
        )

    async def reopen(
        self, conversation_id: int, agent: Agent, *, assignee: Agent | None = None
    ) -> Conversation:
        """Open a resolved conversation again, for ``assignee`` or the queue."""
        async with self._units.write() as w:
            conversation = await self._visible(w.repo, conversation_id, agent)
            reopened = await transitions.reopen(w, conversation, self._handoffs, assignee=assignee)
            if reopened is not None:
                await w.audit(
                    agent,
                    "reopen",
                    "conversation",
                    conversation_id,
                    to=assignee.name if assignee else "queue",
                )
        if reopened is None:
            return conversation  # it was open already: nothing to do
        logger.info("conversation %s reopened by %s", conversation_id, agent.name)
        return reopened

    # -- a contact's data (PIPL / GDPR) ----------------------------------------------

    async def set_contact_attributes(
        self, contact_id: int, agent: Agent, attributes: Mapping[str, object]
    ) -> None:
        """What the shop says of a contact (a VIP flag, a tier), for routing rules."""
        async with self._units.write() as w:
            if not await w.repo.set_attributes(contact_id, attributes):
                raise ContactNotFound(f"no contact {contact_id}")
            await w.audit(agent, "set_attributes", "contact", contact_id, keys=sorted(attributes))

    async def contact_conversations(self, contact_id: int, agent: Agent) -> list[int]:
        """The ids of a contact's conversations, for an export; admins only."""
        _require_admin(agent, "export a contact's data")
        async with self._units.write() as w:
            if await w.repo.contact(contact_id) is None:
                raise ContactNotFound(f"no contact {contact_id}")
            ids = [c.id for c in await w.repo.contact_conversations(contact_id)]
            await w.audit(agent, "export_contact", "contact", contact_id, conversations=len(ids))
        return sorted(ids)

    async def erase_contact(self, contact_id: int, agent: Agent, attachments: Path) -> Erased:
        """Erase a contact's data on request: what they wrote and were sent, their files
        (under ``attachments``), names and addresses. The conversation and message rows
        stay, blank, so the reports keep their counts; open conversations are closed
        (their promises end). Admins only; the erasure is in the audit log."""
        _require_admin(agent, "erase a contact's data")
        async with self._units.write() as w:
            if await w.repo.contact(contact_id) is None:
                raise ContactNotFound(f"no contact {contact_id}")
            for conversation in await w.repo.contact_conversations(contact_id):
                if conversation.status is not ConversationStatus.RESOLVED:
                    # One way to close: the resolve transition, without a word to a
                    # customer whose data is going.
                    await transitions.resolve(
                        w, conversation, self._aftercare, owner=None, quietly=True
                    )
            erased = await w.repo.erase_contact(contact_id, w.now)
            await w.audit(
                agent,
                "erase_contact",
                "contact",
                contact_id,
                conversations=erased.conversations,
                messages=erased.messages,
                files=len(erased.attachment_refs),
            )
        # The files go once the rows that named them are committed.
        await asyncio.to_thread(_delete_files, attachments, erased.attachment_refs)
        logger.info(
            "contact %s erased by %s: %d conversations, %d messages, %d files",
            contact_id,
            agent.name,
            erased.conversations,
            erased.messages,
            len(erased.attachment_refs),
        )
        return erased


def _delete_files(folder: Path, refs: list[str]) -> None:
    root = folder.resolve()
    for ref in refs:
        path = (root / ref).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink()


def _require_admin(agent: Agent, what: str) -> None:
    if not agent.is_admin:
        raise NotAllowed(f"only an admin may {what}")


async def _found(repo: Repositories, conversation_id: int) -> Conversation:
    conversation = await repo.conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"no conversation {conversation_id}")
    return conversation


async def _owned(repo: Repositories, conversation_id: int, agent: Agent) -> Conversation:
    conversation = await _found(repo, conversation_id)
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
