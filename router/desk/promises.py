"""The SLA clock: promises started, paused, kept or missed, inside units of work.

Each promise is a timer row (``sla_timers``): first response from the handoff to
the first person's reply, next response from a customer's message to the next
reply, resolution from the handoff to resolved. Due times are counted in the
policy's business calendar. While the conversation waits on the customer (an agent
asked them something) the resolution clock stands still, and it goes on when
they write. ``sweep`` raises the warnings and breaches that are due, once each
even with several nodes (a conditional UPDATE claims each), and escalates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.conversations import ConversationStatus, Priority
from router.delivery.events import SlaAlert
from router.desk import transitions
from router.desk.sla import Escalation, Metric, SlaPolicies, SlaPolicy
from router.desk.work import Work
from router.metrics import SLA_ALERTS
from router.storage import Conversation, SlaTimer

__all__ = ["Alert", "Promises"]

logger = logging.getLogger(__name__)


# A reply that ends in a question waits on the customer (also "?)" or "？" then an emoji).
@dataclass(frozen=True, slots=True)
class Alert:
    """A warning or breach raised by ``sweep``: who to tell is the notifier's business."""

    conversation_id: int
    metric: str
    level: str
    due_at: datetime
    policy: str
    assignee_id: int | None
    escalated: str | None = None


class Promises:
    """Keeps the SLA timers of conversations under their policies."""

    def __init__(self, policies: SlaPolicies) -> None:
        self.policies = policies

    def choose(self, conversation: Conversation, priority: Priority) -> SlaPolicy:
        return self.policies.choose(
            channel=conversation.reply_to.channel,
            priority=priority,
            tags=conversation.tags,
            language=conversation.language,
            team=conversation.team,
        )

    def policy_of(self, conversation: Conversation) -> SlaPolicy:
        return self.policies.named(conversation.sla_policy)

    async def start(
        self, w: Work, conversation: Conversation, policy: SlaPolicy, priority: Priority
    ) -> datetime | None:
        """A fresh promise on a handoff or reopen: first response (when the policy
        promises one) and resolution; returns when the first response is due."""
        await self._stop_all(w, conversation.id, policy)
        await w.repo.set_promise_fields(conversation.id, sla_policy=policy.name, waiting_since=None)
        first = await self._start(w, conversation.id, policy, Metric.FIRST_RESPONSE, priority)
        await self._start(w, conversation.id, policy, Metric.RESOLUTION, priority)
        await w.repo.refresh_due(conversation.id)
        return first

    async def _start(
        self,
        w: Work,
        conversation_id: int,
        policy: SlaPolicy,
        metric: Metric,
        priority: Priority,
    ) -> datetime | None:
        target = policy.target(metric, priority)
        if target is None:
            return None
        due = policy.calendar.add(w.now, target)
        warn = (
            policy.calendar.add(w.now, target - policy.warn_before)
            if (target > policy.warn_before)
            else w.now
        )
        await w.repo.start_timer(
            conversation_id=conversation_id,
            policy=policy.name,
            metric=metric.value,
            started_at=w.now,
            due_at=due,
            warn_at=warn,
        )
        return due

    async def agent_replied(
        self, w: Work, conversation: Conversation, *, waits_on_customer: bool
    ) -> None:
        """A person answered: the response promises are kept (or missed); a question to
        the customer stops the resolution clock until they write."""
        policy = self.policy_of(conversation)
        for timer in await w.repo.open_timers(
            conversation.id, [Metric.FIRST_RESPONSE.value, Metric.NEXT_RESPONSE.value]
        ):
            await self._stop(w, timer, policy)
        if waits_on_customer and conversation.waiting_since is None:
            for timer in await w.repo.open_timers(conversation.id, [Metric.RESOLUTION.value]):
                if timer.due_at is not None:
                    left = policy.calendar.between(w.now, timer.due_at)
                    await w.repo.pause_timer(timer.id, remaining_seconds=left.total_seconds())
            await w.repo.set_promise_fields(conversation.id, waiting_since=w.now)
        await w.repo.refresh_due(conversation.id)

    async def customer_wrote(self, w: Work, conversation: Conversation) -> None:
        """The customer wrote to a conversation people are on: the resolution clock goes
        on, and after a person's reply a next-response promise starts."""
        if conversation.status not in (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED):
            return
        policy = self.policy_of(conversation)
        changed = False
        if conversation.waiting_since is not None:
            for timer in await w.repo.open_timers(conversation.id, [Metric.RESOLUTION.value]):
                if timer.due_at is None and timer.remaining_seconds is not None:
                    left = timedelta(seconds=timer.remaining_seconds)
                    if left > timedelta(0):
                        due = policy.calendar.add(w.now, left)
                        warn = (
                            policy.calendar.add(w.now, left - policy.warn_before)
                            if left > policy.warn_before
                            else w.now
                        )
                    else:  # it was missed before the pause; it stays missed
                        due, warn = w.now + left, None
                    await w.repo.resume_timer(timer.id, due_at=due, warn_at=warn)
            await w.repo.set_promise_fields(conversation.id, waiting_since=None)
            changed = True
        if conversation.first_response_at is not None and not await w.repo.open_timers(
            conversation.id, [Metric.FIRST_RESPONSE.value, Metric.NEXT_RESPONSE.value]
        ):
            started = await self._start(
                w, conversation.id, policy, Metric.NEXT_RESPONSE, conversation.priority
            )
            changed = changed or started is not None
        if changed:
            await w.repo.refresh_due(conversation.id)

    async def resolved(self, w: Work, conversation: Conversation) -> None:
        """Every running promise ends: resolving answers and resolves."""
        await self._stop_all(w, conversation.id, self.policy_of(conversation))
        await w.repo.set_promise_fields(conversation.id, waiting_since=None)
        await w.repo.refresh_due(conversation.id)

    async def _stop_all(self, w: Work, conversation_id: int, policy: SlaPolicy) -> None:
        for timer in await w.repo.open_timers(conversation_id):
            await self._stop(w, timer, policy)

    async def _stop(self, w: Work, timer: SlaTimer, policy: SlaPolicy) -> None:
        calendar = self.policies.named(timer.policy).calendar if timer.policy else policy.calendar
        if timer.due_at is None:  # paused: what was left decides
            late = -(timer.remaining_seconds or 0.0)
        else:
            late = calendar.between(timer.due_at, w.now).total_seconds()
        outcome = "met" if late <= 0 else "missed"
        if await w.repo.stop_timer(timer.id, now=w.now, outcome=outcome, late_seconds=late):
            logger.info(
                "conversation %s: %s %s (%+.0f s of open time)",
                timer.conversation_id,
                timer.metric,
                outcome,
                late,
            )

    # -- the sweep -------------------------------------------------------------------

    async def sweep(self, w: Work, *, limit: int = 100) -> list[Alert]:
        """Raise the warnings and breaches due by now; escalate breaches."""
        alerts: list[Alert] = []
        for timer in await w.repo.timers_to_warn(w.now, limit):
            if (
                timer.breached_at is None
                and timer.due_at is not None
                and await w.repo.mark_timer(timer.id, "warned_at", w.now)
            ):
                alerts.append(await self._alert(w, timer, "warning"))
        for timer in await w.repo.timers_breached(w.now, limit):
            if await w.repo.mark_timer(timer.id, "breached_at", w.now):
                alert = await self._alert(w, timer, "breach")
                alerts.append(alert)
        return alerts

    async def _alert(self, w: Work, timer: SlaTimer, level: str) -> Alert:
        assert timer.due_at is not None
        conversation = await w.repo.conversation(timer.conversation_id)
        assert conversation is not None
        escalated = None
        if level == "breach":
            escalated = await self._escalate(w, conversation, self.policies.named(timer.policy))
        logger.warning(
            "conversation %s: %s %s of policy %s (due %s)%s",
            conversation.id,
            timer.metric,
            level,
            timer.policy,
            timer.due_at.isoformat(),
            f", escalated: {escalated}" if escalated else "",
        )
        SLA_ALERTS.labels(timer.metric, level).inc()
        w.publish(
            SlaAlert(
                conversation_id=conversation.id,
                metric=timer.metric,
                level=level,
                due_at=timer.due_at.isoformat(),
                policy=timer.policy,
                assignee_id=conversation.assignee_id,
            )
        )
        return Alert(
            conversation_id=conversation.id,
            metric=timer.metric,
            level=level,
            due_at=timer.due_at,
            policy=timer.policy,
            assignee_id=conversation.assignee_id,
            escalated=escalated,
        )

    async def _escalate(self, w: Work, conversation: Conversation, policy: SlaPolicy) -> str | None:
        if conversation.status not in (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED):
            return None
        if policy.escalate is Escalation.RAISE_PRIORITY:
            if conversation.priority >= Priority.URGENT:
                return None
            raised = Priority(conversation.priority + 1)
            await transitions.escalate(w, conversation, raised)
            return f"priority raised to {raised.label}"
        if (
            policy.escalate is Escalation.UNASSIGN
            and conversation.assignee_id is not None
            and await transitions.assign(w, conversation, None) is not None
        ):
            return "back to the queue"
        return None
