"""Contacts and their identities, conversations, messages, handoffs, the outbox, web
chat's stored stream and the questions nobody answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from router.storage.models.base import Base

__all__ = [
    "ContactRow",
    "ConversationRow",
    "GapQuestionRow",
    "HandoffRow",
    "IdentityRow",
    "MessageRow",
    "OutboxRow",
    "WebChatFrameRow",
]


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime]
    # What the shop says of this customer (e.g. {"vip": true}); routing rules read it.
    attributes: Mapped[dict[str, Any] | None]


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identities_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # Set when the channel said this customer cannot be reached there (blocked the bot).
    unreachable_at: Mapped[datetime | None]


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_thread", "channel", "thread_key", "status"),
        Index("ix_conversations_queue", "status", "sla_due_at", "priority"),
        Index("ix_conversations_topic", "contact_id", "topic"),
        Index("ix_conversations_created", "created_at"),
        Index("ix_conversations_team", "team", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    thread_key: Mapped[str] = mapped_column(String(320))
    # The reply route: where the customer last wrote from.
    reply_channel: Mapped[str] = mapped_column(String(40))
    reply_recipient: Mapped[str] = mapped_column(String(320))
    reply_thread: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(String(300))
    # The channel's normalised subject (email: "Re:" and the like stripped), for threading.
    topic: Mapped[str | None] = mapped_column(String(300))
    tags: Mapped[list[Any] | None]
    bot_misses: Mapped[int] = mapped_column(Integer, default=0)
    sla_due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    handed_off_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # The team whose queue it is in (a key of routing.teams); NULL: everyone's.
    team: Mapped[str | None] = mapped_column(String(60))
    # The SLA policy it is under (router.desk.sla), chosen at handoff.
    sla_policy: Mapped[str | None] = mapped_column(String(60))
    # Since when it waits on the customer (an agent asked): the resolution clock pauses.
    waiting_since: Mapped[datetime | None]
    # Satisfaction: asked (the survey went out), the 1-5 rating, its comment.
    survey_asked_at: Mapped[datetime | None]
    csat_score: Mapped[int | None] = mapped_column(Integer)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    csat_at: Mapped[datetime | None]
    # The last follow-up (回访) sent: a reply to it within the window reopens.
    follow_up_at: Mapped[datetime | None]
    # The ``updated_at`` its gap questions were last found at (router.reporting.kb_gaps): stale
    # while ``updated_at`` is later.
    gaps_scanned_at: Mapped[datetime | None]


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    # in (from the customer), out (to the customer), note (agents only).
    direction: Mapped[str] = mapped_column(String(8))
    author_kind: Mapped[str] = mapped_column(String(16))
    author_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    kind: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(40))
    # The channel's own id: the dedup key for inbound messages, NULL for ours.
    external_id: Mapped[str | None] = mapped_column(String(320))
    entry_id: Mapped[str | None] = mapped_column(String(200))
    choices: Mapped[list[Any] | None]
    extras: Mapped[dict[str, Any] | None]
    attachments: Mapped[list[Any] | None]
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]


class HandoffRow(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    reason: Mapped[str] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer)
    candidates: Mapped[list[Any]]
    context: Mapped[dict[str, Any]]
    # NULL: the policy promises no first response.
    sla_due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    thread: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    choices: Mapped[list[Any]]
    subject: Mapped[str | None] = mapped_column(String(300))
    # Files sent with the reply (name, content_type, size, ref), as on its message.
    attachments: Mapped[list[Any] | None]
    # pending, sent or dead.
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Transient failures are retried until then; NULL (rows from before 0005): the
    # retry window counts from created_at.
    give_up_at: Mapped[datetime | None]


class WebChatFrameRow(Base):
    """What a web-chat visitor was shown, in order: replayed on reconnect, from any node."""

    __tablename__ = "webchat_frames"
    __table_args__ = (
        UniqueConstraint("visitor_id", "seq", name="uq_webchat_frames_visitor_id"),
        UniqueConstraint("visitor_id", "frame_id", name="uq_webchat_frames_frame"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    # The reply's idempotency key (or c:<client id>): a re-delivery keeps its seq.
    frame_id: Mapped[str] = mapped_column(String(120))
    frame: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class GapQuestionRow(Base):
    """A question of a conversation's messages that the bot did not answer to the
    customer's satisfaction: asked again right after an answer, or left at a
    clarification nobody picked. Found by the gap scan, read by the gap report."""

    __tablename__ = "gap_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    # asked_again or clarify_unpicked
    source: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
