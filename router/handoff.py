"""Handing a conversation to people: the only writer of handoffs.

A handoff puts the conversation in the human queue with its promise (the SLA
policy's timers, ``router.promises``), records why and with what context (the
bot's candidates and scores, the language, the customer's earlier conversations
on every channel), and tells the customer that a person will answer and by when,
in business hours (outside them: when the desk opens), in their language and
script. The pipeline (the bot gave up), split (a mail that belongs on its own) and
reopen (back to the queue) use it, so every queued conversation carries the same
context.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot import BotTexts
from knowledge import chinese_script
from router.conversations import AuthorKind, ConversationStatus, Priority
from router.events import ConversationChanged
from router.promises import Promises
from router.storage import Conversation, Message
from router.work import Work

__all__ = ["Handoffs"]

logger = logging.getLogger(__name__)


class Handoffs:
    """Queues conversations for people, with their context and the customer's notice."""

    def __init__(self, *, promises: Promises, texts: BotTexts) -> None:
        self.promises = promises
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
        repo, now = w.repo, w.now
        priority = Priority.HIGH if urgent else max(conversation.priority, Priority.NORMAL)
        policy = self.promises.choose(conversation, priority)
        due = policy.due(priority, now)
        if not await repo.hand_off(
            conversation.id, priority=priority, sla_due_at=due, now=now, from_status=from_status
        ):
            return False
        await self.promises.start(w, conversation, policy, priority)
        earlier = [
            {
                "id": c.id,
                "channel": c.channel,
                "status": c.status.value,
                "created_at": c.created_at.isoformat(),
            }
            for c in await repo.contact_conversations(conversation.contact_id)
            if c.id != conversation.id
        ]
        await repo.add_handoff(
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
                **(context or {}),
            },
            sla_due_at=due,
            now=now,
        )
        logger.info(
            "conversation %s handed off (%s), priority %s, policy %s, due %s",
            conversation.id,
            reason,
            priority.label,
            policy.name,
            due.isoformat() if due else "-",
        )
        if notify:
            zone = policy.zone
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
        w.publish(ConversationChanged(conversation.id, ConversationStatus.QUEUED.value, None))
        return True
