"""Handing a conversation to people: the only writer of handoffs.

A handoff puts the conversation in the human queue with its promise (the SLA
policy's timers, ``router.desk.promises``), records why and with what context (the
bot's candidates and scores, the language, the customer's earlier conversations
on every channel, the routing rule that chose its team), and tells the customer that
a person will answer and by when, in business hours (outside them: when the desk
opens), in their language and script. The pipeline (the bot gave up), split (a mail
that belongs on its own) and reopen (back to the queue) use it, so every queued
conversation carries the same context.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot import BotTexts
from knowledge import chinese_script
from router.conversations import AuthorKind, ConversationStatus, Priority
from router.desk import transitions
from router.desk.promises import Promises
from router.desk.routing import HandoffFacts, Routed, Routing
from router.desk.sla import SlaPolicy
from router.desk.work import Work
from router.storage import Conversation, Message

__all__ = ["Handoffs"]

logger = logging.getLogger(__name__)


class Handoffs:
    """Queues conversations for people, with their context and the customer's notice."""

    def __init__(
        self, *, promises: Promises, texts: BotTexts, routing: Routing | None = None
    ) -> None:
        self.promises = promises
        self.routing = routing or Routing()
        self._texts = texts

    async def hand_off(
        self,
        w: Work,
        conversation: Conversation,
        *,
        reason: str,
        language: str | None,
        trigger: Message | None = None,
        urgent: bool = False,
        candidates: Sequence[Mapping[str, Any]] = (),
        notify: bool = True,
        context: Mapping[str, Any] | None = None,
        from_status: ConversationStatus = ConversationStatus.BOT,
    ) -> bool:
        """Queue ``conversation`` for a person, from the bot or (``from_status``) from
        resolved; False if it is not in that state any more (someone claimed it
        meanwhile: nothing to do).

        ``notify``: tell the customer a person will answer by the promised time (not when
        nothing automatic may be sent to them: a flagged mail, an auto-reply loop).
        """
        now = w.now
        routed = await self._route(w, conversation, reason, language, trigger, candidates)
        priority = max(conversation.priority, Priority.NORMAL)
        if routed is not None and routed.priority is not None:
            priority = routed.priority
        if urgent:
            priority = max(priority, Priority.HIGH)
        if routed is not None:
            conversation = dataclasses.replace(
                conversation,
                tags=tuple(dict.fromkeys((*conversation.tags, *routed.tags))),
                team=routed.team or conversation.team,
            )
        if routed is not None and routed.sla_policy is not None:
            policy = self.promises.policies.named(routed.sla_policy)
        else:
            policy = self.promises.choose(conversation, priority)
        due = policy.due(priority, now)
        if not await transitions.queue(
            w,
            conversation.id,
            priority=priority,
            due=due,
            team=conversation.team,
            tags=conversation.tags if routed is not None and routed.tags else None,
            from_status=from_status,
        ):
            return False
        await self.promises.start(w, conversation, policy, priority)
        context = {
            **(context or {}),
            **({"routed": routed.as_context(self.routing.teams)} if routed is not None else {}),
        }
        await self._record(
            w, conversation, reason, language, priority, due, trigger, candidates, context
        )
        logger.info(
            "conversation %s handed off (%s), priority %s, policy %s, due %s, team %s%s",
            conversation.id,
            reason,
            priority.label,
            policy.name,
            due.isoformat() if due else "-",
            conversation.team or "-",
            f" (rule {routed.rule})" if routed is not None else "",
        )
        if notify:
            await self._tell_customer(w, conversation, policy, due, reason, language, trigger)
        return True

    async def _record(
        self,
        w: Work,
        conversation: Conversation,
        reason: str,
        language: str | None,
        priority: Priority,
        due: datetime | None,
        trigger: Message | None,
        candidates: Sequence[Mapping[str, Any]],
        context: Mapping[str, Any],
    ) -> None:
        """The handoff with everything an agent needs not to ask the customer again."""
        earlier = [
            {
                "id": c.id,
                "channel": c.channel,
                "status": c.status.value,
                "created_at": c.created_at.isoformat(),
            }
            for c in await w.repo.contact_conversations(conversation.contact_id)
            if c.id != conversation.id
        ]
        await w.repo.add_handoff(
            conversation_id=conversation.id,
            message_id=trigger.id if trigger else None,
            reason=reason,
            language=language,
            priority=priority,
            candidates=[dict(c) for c in candidates],
            context={
                "customer_text": trigger.text if trigger else None,
                "channel": conversation.reply_to.channel,
                "bot_misses": conversation.bot_misses,
                "earlier_conversations": earlier,
                **context,
            },
            sla_due_at=due,
            now=w.now,
        )

    async def _tell_customer(
        self,
        w: Work,
        conversation: Conversation,
        policy: SlaPolicy,
        due: datetime | None,
        reason: str,
        language: str | None,
        trigger: Message | None,
    ) -> None:
        """A person will answer, by when (in the desk's business hours and zone)."""
        zone, now = policy.zone, w.now
        opens = policy.calendar.next_open(now)
        notice = self._texts.handoff_notice(
            language or conversation.language or "en",
            ticket=conversation.id,
            due=due.astimezone(zone) if due else None,
            now=now.astimezone(zone),
            opens=opens.astimezone(zone) if opens else None,
            script=chinese_script(trigger.text) if trigger else None,
        )
        await w.say(
            conversation,
            notice,
            author=AuthorKind.SYSTEM,
            kind="ack",
            extras={"sla_due_at": due.isoformat() if due else None, "reason": reason},
        )

    async def _route(
        self,
        w: Work,
        conversation: Conversation,
        reason: str,
        language: str | None,
        trigger: Message | None,
        candidates: Sequence[Mapping[str, Any]],
    ) -> Routed | None:
        """The routing rule that matches this handoff, if any."""
        if not len(self.routing):
            return None
        contact = await w.repo.contact(conversation.contact_id)
        closest = candidates[0] if candidates else {}
        return self.routing.route(
            HandoffFacts(
                channel=conversation.reply_to.channel,
                language=language or conversation.language,
                reason=reason,
                text=trigger.text if trigger else "",
                entry=str(closest["id"]) if "id" in closest else None,
                entry_tags=tuple(str(t) for t in closest.get("tags") or ()),
                contact=contact.attributes if contact else {},
            ),
            self.promises.policies,
            w.now,
        )
