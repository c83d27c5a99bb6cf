"""What an agent schedules on a conversation: follow-ups and reminders, and a
rating that arrives from outside the channel."""

from __future__ import annotations

import logging
from datetime import datetime

from router.desk import transitions
from router.desk.aftercare import Rating
from router.desk.reading import DeskReading, found
from router.errors import (
    MessageNotFound,
    NotAllowed,
    StaleView,
)
from router.storage import (
    Agent,
    Conversation,
    Scheduled,
)

__all__ = ["LaterActions"]

logger = logging.getLogger(__name__)


class LaterActions(DeskReading):
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
            conversation = await found(w.repo, conversation_id)
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
