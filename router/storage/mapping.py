"""Rows to records: the only place that knows both shapes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.base import Attachment, ChannelAddress, Choice
from router.conversations import (
    AuthorKind,
    ConversationStatus,
    Direction,
    Priority,
)
from router.storage.models import (
    AgentRow,
    ContactRow,
    ConversationRow,
    MessageRow,
    OutboxRow,
    ScheduledRow,
    SlaTimerRow,
)
from router.storage.records import (
    Agent,
    Contact,
    Conversation,
    Message,
    OutboxItem,
    Scheduled,
    SlaTimer,
)

__all__ = [
    "agent_record",
    "attachments",
    "choices",
    "conversation_record",
    "dump_choices",
    "message_record",
    "outbox_record",
    "scheduled_record",
    "timer_record",
]


def choices(raw: list[Any] | None) -> tuple[Choice, ...]:
    return tuple(Choice(id=str(c["id"]), label=str(c["label"])) for c in raw or ())


def dump_choices(choices: Iterable[Choice]) -> list[Any]:
    return [{"id": c.id, "label": c.label} for c in choices]


def conversation_record(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        contact_id=row.contact_id,
        channel=row.channel,
        thread_key=row.thread_key,
        reply_to=ChannelAddress(
            channel=row.reply_channel, recipient_id=row.reply_recipient, thread_id=row.reply_thread
        ),
        status=ConversationStatus(row.status),
        priority=Priority(row.priority),
        assignee_id=row.assignee_id,
        language=row.language,
        subject=row.subject,
        bot_misses=row.bot_misses,
        sla_due_at=row.sla_due_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        handed_off_at=row.handed_off_at,
        first_response_at=row.first_response_at,
        resolved_at=row.resolved_at,
        topic=row.topic,
        tags=tuple(str(t) for t in row.tags or ()),
        sla_policy=row.sla_policy,
        waiting_since=row.waiting_since,
        survey_asked_at=row.survey_asked_at,
        csat_score=row.csat_score,
        csat_comment=row.csat_comment,
        csat_at=row.csat_at,
        follow_up_at=row.follow_up_at,
        team=row.team,
    )


def dump_attachments(attachments: Iterable[Attachment]) -> list[dict[str, Any]] | None:
    """What a message's or an outbox row's ``attachments`` column holds (None: none)."""
    return [
        {"name": a.name, "content_type": a.content_type, "size": a.size, "ref": a.ref}
        for a in attachments
    ] or None


def attachments(raw: list[Any] | None) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(name=a["name"], content_type=a["content_type"], size=a["size"], ref=a["ref"])
        for a in raw or ()
    )


def message_record(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        direction=Direction(row.direction),
        author_kind=AuthorKind(row.author_kind),
        author_agent_id=row.author_agent_id,
        kind=row.kind,
        text=row.text,
        channel=row.channel,
        external_id=row.external_id,
        entry_id=row.entry_id,
        choices=choices(row.choices),
        created_at=row.created_at,
        attachments=attachments(row.attachments),
        edited_at=row.edited_at,
        extras=dict(row.extras or {}),
    )


def outbox_record(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        conversation_id=row.conversation_id,
        message_id=row.message_id,
        idempotency_key=row.idempotency_key,
        address=ChannelAddress(
            channel=row.channel, recipient_id=row.recipient, thread_id=row.thread
        ),
        kind=row.kind,
        text=row.text,
        choices=choices(row.choices),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
        subject=row.subject,
        give_up_at=row.give_up_at,
        attachments=attachments(row.attachments),
    )


def agent_record(row: AgentRow) -> Agent:
    return Agent(
        id=row.id,
        name=row.name,
        active=row.active,
        created_at=row.created_at,
        role=row.role or "agent",
        language=row.language,
        has_password=row.password_hash is not None,
        email=row.email,
    )


def contact_record(row: ContactRow) -> Contact:
    return Contact(
        id=row.id,
        display_name=row.display_name,
        email=row.email,
        created_at=row.created_at,
        attributes=dict(row.attributes or {}),
    )


def timer_record(row: SlaTimerRow) -> SlaTimer:
    return SlaTimer(
        id=row.id,
        conversation_id=row.conversation_id,
        policy=row.policy,
        metric=row.metric,
        started_at=row.started_at,
        due_at=row.due_at,
        remaining_seconds=row.remaining_seconds,
        warn_at=row.warn_at,
        warned_at=row.warned_at,
        breached_at=row.breached_at,
        stopped_at=row.stopped_at,
        outcome=row.outcome,
        late_seconds=row.late_seconds,
    )


def scheduled_record(row: ScheduledRow) -> Scheduled:
    return Scheduled(
        id=row.id,
        conversation_id=row.conversation_id,
        kind=row.kind,
        due_at=row.due_at,
        status=row.status,
        text=row.text,
        agent_id=row.agent_id,
        created_by=row.created_by,
        created_at=row.created_at,
        done_at=row.done_at,
    )
