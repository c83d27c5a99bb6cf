"""Telling people of the desk: alerts by email, besides the inbox's live events.

Listens to the event bus for promise warnings and breaches (to the assignee and
the supervisor), conversations handed to an agent, reminders (to that agent) and
low ratings (to the supervisor), and mails them through the email channel's relay
when there is one. Signed-in agents also see them live in the inbox (the same
events over its websocket, shown as a badge and a browser notification).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from router.delivery.events import AgentAlert, Event, EventBus, SlaAlert
from router.storage import Database

__all__ = ["Notifier"]

logger = logging.getLogger(__name__)

Send = Callable[[str, str, str], Awaitable[None]]

_METRICS = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}


class Notifier:
    """Mails alerts to agents (their ``email``) and the supervisor."""

    def __init__(
        self,
        *,
        db: Database,
        send: Send | None,
        supervisor: Callable[[], str | None],
        zone: ZoneInfo,
        inbox_url: str = "",
    ) -> None:
        self._db = db
        self._send = send
        self._supervisor = supervisor
        self._zone = zone
        self._inbox_url = inbox_url.rstrip("/")
        self.sent = 0

    async def run(self, events: EventBus) -> None:
        async with events.subscribe() as subscription:
            async for event in subscription:
                try:
                    await self.handle(event)
                except Exception:
                    logger.exception("alert for %s not mailed", type(event).__name__)

    async def handle(self, event: Event) -> None:
        if self._send is None:
            return
        if isinstance(event, SlaAlert):
            await self._sla(event)
        elif isinstance(event, AgentAlert):
            await self._agent(event)

    def _link(self, conversation_id: int) -> str:
        return f"\n\n{self._inbox_url}/inbox/c/{conversation_id}" if self._inbox_url else ""

    async def _sla(self, alert: SlaAlert) -> None:
        what = _METRICS.get(alert.metric, alert.metric)
        if alert.level == "warning":
            subject = f"[RelayDesk] #{alert.conversation_id}: {what} due soon"
        else:
            subject = f"[RelayDesk] #{alert.conversation_id}: {what} promise missed"
        due = datetime.fromisoformat(alert.due_at).astimezone(self._zone)
        text = (
            f"Conversation #{alert.conversation_id} ({alert.policy} policy): the {what} "
            f"was due {due:%Y-%m-%d %H:%M %Z}"
            + (" and is late." if alert.level == "breach" else ".")
            + self._link(alert.conversation_id)
        )
        recipients = await self._emails(alert.assignee_id)
        supervisor = self._supervisor()
        if supervisor:
            recipients.append(supervisor)
        await self._mail(recipients, subject, text)

    async def _agent(self, alert: AgentAlert) -> None:
        if alert.agent_id is None:
            supervisor = self._supervisor()
            recipients = [supervisor] if supervisor else []
        else:
            recipients = await self._emails(alert.agent_id)
        subject = f"[RelayDesk] #{alert.conversation_id}: {alert.kind.replace('_', ' ')}"
        await self._mail(recipients, subject, alert.text + self._link(alert.conversation_id))

    async def _emails(self, agent_id: int | None) -> list[str]:
        if agent_id is None:
            return []
        async with self._db.read() as repo:
            agent = await repo.agent(agent_id)
        return [agent.email] if agent is not None and agent.email and agent.active else []

    async def _mail(self, recipients: list[str], subject: str, text: str) -> None:
        assert self._send is not None
        for to in dict.fromkeys(recipients):
            await self._send(to, subject, text)
            self.sent += 1
            logger.info("alert mailed: %s", subject)
