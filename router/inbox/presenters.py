"""How conversations, messages, handoffs, deliveries and events are shown: the one set
of presenters behind the agent API, the inbox pages and the live websockets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

from channels.base import Attachment
from router.delivery.events import (
    AgentAlert,
    AgentTyping,
    ConversationChanged,
    DeliveryFailed,
    Event,
    KnowledgeReloaded,
    MessageAdded,
    MessageDelivered,
    Resync,
    SlaAlert,
)
from router.desk.actions import ConversationDetail
from router.desk.routing import Routing
from router.desk.sla import SlaPolicies
from router.storage import Conversation, Handoff, Message, OutboxItem, Scheduled, SlaTimer
from router.storage.audit_queries import AuditEntry
from router.storage.canned_queries import CannedReply

__all__ = [
    "attachment_url",
    "delivery",
    "detail",
    "event_frame",
    "handoff",
    "message",
    "scheduled",
    "sla_policies",
    "summary",
    "time",
    "timer",
]

_EVENT_NAMES: Mapping[type, str] = {
    MessageAdded: "message_added",
    ConversationChanged: "conversation_changed",
    MessageDelivered: "message_delivered",
    DeliveryFailed: "delivery_failed",
    AgentTyping: "agent_typing",
    KnowledgeReloaded: "knowledge_reloaded",
    SlaAlert: "sla_alert",
    AgentAlert: "agent_alert",
    Resync: "resync",
}


def event_frame(event: Event) -> dict[str, Any]:
    """An event as one JSON object: its ``type`` and its fields."""
    return {"type": _EVENT_NAMES[type(event)], **asdict(event)}


def handoff(h: Handoff) -> dict[str, Any]:
    return {
        "reason": h.reason,
        "language": h.language,
        "priority": h.priority.label,
        "candidates": list(h.candidates),
        "context": h.context,
        "sla_due_at": time(h.sla_due_at),
        "created_at": time(h.created_at),
    }


def message(
    m: Message, names: Mapping[int, str], delivered: OutboxItem | None = None
) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction.value,
        "author": m.author_kind.value,
        "agent": (
            None
            if m.author_agent_id is None
            else {"id": m.author_agent_id, "name": names.get(m.author_agent_id)}
        ),
        "kind": m.kind,
        "text": m.text,
        "entry_id": m.entry_id,
        "extras": m.extras,
        "choices": [{"id": c.id, "label": c.label} for c in m.choices],
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "url": attachment_url(a),
            }
            for a in m.attachments
        ],
        "created_at": time(m.created_at),
        "edited_at": time(m.edited_at),
        "delivery": None if delivered is None else delivery(delivered),
    }


def time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def summary(
    conversation: Conversation, last: Message | None = None, names: Mapping[int, str] = {}
) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "status": conversation.status.value,
        "channel": conversation.channel,
        "priority": conversation.priority.label,
        "tags": list(conversation.tags),
        "team": conversation.team,
        "assignee": (
            None
            if conversation.assignee_id is None
            else {
                "id": conversation.assignee_id,
                "name": names.get(conversation.assignee_id),
            }
        ),
        "contact_id": conversation.contact_id,
        # Where replies go: the customer's address, changed only by the customer.
        "reply_to": conversation.reply_to.recipient_id,
        "language": conversation.language,
        "subject": conversation.subject,
        "sla_due_at": time(conversation.sla_due_at),
        "created_at": time(conversation.created_at),
        "updated_at": time(conversation.updated_at),
        "handed_off_at": time(conversation.handed_off_at),
        "first_response_at": time(conversation.first_response_at),
        "resolved_at": time(conversation.resolved_at),
        "sla_policy": conversation.sla_policy,
        "waiting_on_customer_since": time(conversation.waiting_since),
        "satisfaction": (
            None
            if conversation.survey_asked_at is None
            else {
                "asked_at": time(conversation.survey_asked_at),
                "score": conversation.csat_score,
                "comment": conversation.csat_comment,
                "rated_at": time(conversation.csat_at),
            }
        ),
        "last_message": (
            None
            if last is None
            else {
                "author": last.author_kind.value,
                "text": last.text[:200],
                "at": time(last.created_at),
            }
        ),
    }


def delivery(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "message_id": item.message_id,
        "conversation_id": item.conversation_id,
        "status": item.status,
        "attempts": item.attempts,
        "last_error": item.last_error,
        "next_attempt_at": time(item.next_attempt_at) if item.status == "pending" else None,
        "sent_at": time(item.sent_at),
    }


def attachment_url(attachment: Attachment) -> str | None:
    """Where agents download a customer's file; None if the channel refused it."""
    if attachment.ref.startswith("refused:"):
        return None
    return f"/api/agent/attachments/{attachment.ref}?name={quote(attachment.name)}"


def detail(detail: ConversationDetail) -> dict[str, Any]:
    deliveries = {d.message_id: d for d in detail.deliveries}
    names = detail.agent_names
    contact = detail.contact
    return {
        **summary(detail.conversation, None, names),
        "contact": {
            "id": detail.conversation.contact_id,
            "display_name": contact.display_name if contact else None,
            "email": contact.email if contact else None,
            "identities": [
                {
                    "channel": i.channel,
                    "external_id": i.external_id,
                    "display_name": i.display_name,
                    "unreachable_at": time(i.unreachable_at),
                }
                for i in detail.identities
            ],
        },
        "messages": [message(m, names, deliveries.get(m.id)) for m in detail.messages],
        "handoffs": [handoff(h) for h in detail.handoffs],
        "failed_deliveries": [delivery(d) for d in detail.deliveries if d.status == "dead"],
        "other_conversations": [summary(c) for c in detail.other_conversations],
        "promises": [timer(t) for t in detail.timers],
        "scheduled": [scheduled(i) for i in detail.scheduled],
    }


def timer(t: SlaTimer) -> dict[str, Any]:
    """One promise: running (due_at), paused (remaining_seconds), or stopped (outcome)."""
    return {
        "metric": t.metric,
        "policy": t.policy,
        "started_at": time(t.started_at),
        "due_at": time(t.due_at),
        "paused_with_seconds_left": t.remaining_seconds if t.due_at is None else None,
        "warned_at": time(t.warned_at),
        "breached_at": time(t.breached_at),
        "stopped_at": time(t.stopped_at),
        "outcome": t.outcome,
        "late_seconds": t.late_seconds,
    }


def scheduled(item: Scheduled) -> dict[str, Any]:
    return {
        "id": item.id,
        "conversation_id": item.conversation_id,
        "kind": item.kind,
        "due_at": time(item.due_at),
        "status": item.status,
        "text": item.text,
        "agent_id": item.agent_id,
        "created_at": time(item.created_at),
        "done_at": time(item.done_at),
    }


def _local(moment: datetime | None, zone: Any) -> str | None:
    return None if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _minutes(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 60


def canned(reply: CannedReply, *, may_change: bool, filled: str | None = None) -> dict[str, Any]:
    return {
        "id": reply.id,
        "title": reply.title,
        "text": reply.text,
        "scope": "mine" if reply.owner_id is not None else "team" if reply.team else "everyone",
        "team": reply.team,
        "macro": reply.is_macro,
        "tags": list(reply.tags),
        "priority": reply.priority.label if reply.priority is not None else None,
        "resolve": reply.resolve,
        "may_change": may_change,
        **({"filled": filled} if filled is not None else {}),
        "updated_at": time(reply.updated_at),
    }


def routing(r: Routing) -> dict[str, Any]:
    """The teams and rules in force, each rule with only the conditions and actions it
    sets."""
    return {
        "teams": list(r.listing()),
        "rules": [
            {
                "number": number,
                "name": rule.name,
                "when": {
                    k: v
                    for k, v in rule.when.model_dump(mode="json").items()
                    if v not in (None, [], {}) and not (k == "calendar" and v == "default")
                },
                "then": {
                    k: v
                    for k, v in rule.then.model_dump(mode="json").items()
                    if v not in (None, [])
                },
            }
            for number, rule in r.rules()
        ],
    }


def sla_policies(policies: SlaPolicies, now: datetime) -> dict[str, Any]:
    calendars = {p.calendar.name: p.calendar for p in (*policies.policies, policies.default)}
    return {
        "calendars": [
            {
                "name": c.name,
                "timezone": c.zone.key,
                "always_open": c.always_open,
                "open_now": c.is_open(now),
                "next_open": time(c.next_open(now)),
                "next_open_local": _local(c.next_open(now), c.zone),
            }
            for c in calendars.values()
        ],
        "policies": [
            {
                "name": p.name,
                "calendar": p.calendar.name,
                "conditions": {
                    "channels": sorted(p.channels),
                    "priorities": sorted(x.label for x in p.priorities),
                    "tags": sorted(p.tags),
                    "languages": sorted(p.languages),
                    "teams": sorted(p.teams),
                },
                "first_response_minutes": {
                    k.label: _minutes(v) for k, v in sorted(p.first_response.items())
                },
                "next_response_minutes": _minutes(p.next_response),
                "resolution_minutes": _minutes(p.resolution),
                "warn_before_minutes": _minutes(p.warn_before),
                "escalate": p.escalate.value,
                "follow_up_minutes": _minutes(p.follow_up),
            }
            for p in (*policies.policies, policies.default)
        ],
        "survey": policies.survey,
    }


def audit_entry(entry: AuditEntry, zone: tzinfo | None = None) -> dict[str, Any]:
    """One audit-log entry as the API and the admin page show it."""
    at = entry.at.astimezone(zone) if zone else entry.at
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "when": at.strftime("%Y-%m-%d %H:%M:%S"),
        "agent_id": entry.agent_id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "target_id": entry.target_id,
        "detail": dict(entry.detail),
        "origin": entry.origin,
    }
