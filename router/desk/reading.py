"""The desk's reading side: what an agent may see (team visibility), the queue, a
conversation's transcript and its whole detail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot import BotTexts
from router.conversations import ConversationStatus
from router.delivery.events import ConversationChanged, Event
from router.desk.aftercare import Aftercare
from router.desk.handoff import Handoffs
from router.desk.work import Units
from router.errors import (
    ConversationNotFound,
    NotAllowed,
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

__all__ = ["ConversationDetail", "DeskReading", "found", "require_admin"]


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


class DeskReading:
    """Who sees what, and reading conversations: what every part of the desk builds on."""

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
        conversation = await found(repo, conversation_id)
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
                else await found(repo, conversation_id)
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


def require_admin(agent: Agent, what: str) -> None:
    if not agent.is_admin:
        raise NotAllowed(f"only an admin may {what}")


async def found(repo: Repositories, conversation_id: int) -> Conversation:
    conversation = await repo.conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFound(f"no conversation {conversation_id}")
    return conversation
