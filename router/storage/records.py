"""What repositories hand out: plain frozen dataclasses, never ORM rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.base import Attachment, ChannelAddress, Choice
from router.conversations import AuthorKind, ConversationStatus, Direction, Priority

__all__ = [
    "Agent",
    "Contact",
    "Conversation",
    "Handoff",
    "Identity",
    "Message",
    "OutboxItem",
    "Scheduled",
    "SlaTimer",
]


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    display_name: str | None
    email: str | None
    created_at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Identity:
    channel: str
    external_id: str
    display_name: str | None
    unreachable_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    active: bool
    created_at: datetime
    role: str = "agent"
    language: str | None = None
    has_password: bool = False
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_reports(self) -> bool:
        """Admins and leads (agents with the reporting role) see the reports."""
        return self.role in ("admin", "lead")


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    contact_id: int
    channel: str
    thread_key: str
    reply_to: ChannelAddress
    status: ConversationStatus
    priority: Priority
    assignee_id: int | None
    language: str | None
    subject: str | None
    bot_misses: int
    sla_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    handed_off_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    topic: str | None = None
    tags: tuple[str, ...] = ()
    sla_policy: str | None = None
    waiting_since: datetime | None = None
    survey_asked_at: datetime | None = None
    csat_score: int | None = None
    csat_comment: str | None = None
    csat_at: datetime | None = None
    follow_up_at: datetime | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    conversation_id: int
    direction: Direction
    author_kind: AuthorKind
    author_agent_id: int | None
    kind: str | None
    text: str
    channel: str
    external_id: str | None
    entry_id: str | None
    choices: tuple[Choice, ...]
    created_at: datetime
    attachments: tuple[Attachment, ...] = ()
    edited_at: datetime | None = None
    # Channel details (subject, deep-link payload) and, for the bot, why it answered.
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Handoff:
    id: int
    conversation_id: int
    reason: str
    language: str | None
    priority: Priority
    candidates: tuple[dict[str, Any], ...]
    context: dict[str, Any]
    sla_due_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    conversation_id: int
    message_id: int
    idempotency_key: str
    address: ChannelAddress
    kind: str
    text: str
    choices: tuple[Choice, ...]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    subject: str | None = None
    give_up_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class SlaTimer:
    id: int
    conversation_id: int
    policy: str
    metric: str
    started_at: datetime
    due_at: datetime | None
    remaining_seconds: float | None
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    outcome: str | None
    late_seconds: float | None


@dataclass(frozen=True, slots=True)
class Scheduled:
    id: int
    conversation_id: int
    kind: str
    due_at: datetime
    status: str
    text: str | None
    agent_id: int | None
    created_by: int | None
    created_at: datetime
    done_at: datetime | None
