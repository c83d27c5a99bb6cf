"""ORM rows. They stay inside ``router.storage``; repositories hand out dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AgentRow",
    "AuditRow",
    "Base",
    "CannedReplyRow",
    "ContactRow",
    "ConversationRow",
    "GapQuestionRow",
    "HandoffRow",
    "IdentityRow",
    "LoginThrottleRow",
    "MessageRow",
    "OutboxRow",
    "PresenceRow",
    "RateBucketRow",
    "ScheduledRow",
    "SessionRow",
    "SettingRow",
    "SlaTimerRow",
    "WebChatFrameRow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back an aware datetime (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


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


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # argon2 hash for the inbox web app; NULL: API token only.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # agent or admin.
    role: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")
    # The inbox's language for this agent (zh or en); NULL: the browser's.
    language: Mapped[str | None] = mapped_column(String(8))
    # Where alerts about this agent's conversations go; NULL: the inbox only.
    email: Mapped[str | None] = mapped_column(String(320))


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


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


class SlaTimerRow(Base):
    """One promise on one conversation: a target counted in its policy's calendar."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        Index("ix_sla_timers_open", "stopped_at", "due_at"),
        Index("ix_sla_timers_warn", "stopped_at", "warn_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    policy: Mapped[str] = mapped_column(String(60))
    # first_response, next_response or resolution.
    metric: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    # NULL while paused (waiting on the customer); then remaining_seconds holds what is left.
    due_at: Mapped[datetime | None]
    remaining_seconds: Mapped[float | None]
    warn_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    # met or missed, and by how much open time (seconds; positive: late).
    outcome: Mapped[str | None] = mapped_column(String(8))
    late_seconds: Mapped[float | None]


class ScheduledRow(Base):
    """Work for later that survives restarts: follow-ups to customers, reminders to agents."""

    __tablename__ = "scheduled"
    __table_args__ = (Index("ix_scheduled_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    # follow_up (a message to the customer) or reminder (a note to an agent).
    kind: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    # pending, done or cancelled.
    status: Mapped[str] = mapped_column(String(12))
    text: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class SettingRow(Base):
    """Settings an admin changes while the service runs (the SLA section), over config.yaml."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))


class PresenceRow(Base):
    """One open inbox (an agent's websocket on a node): who, what they look at, until
    when they type. Shared by the nodes; its node refreshes ``seen_at`` and removes it
    at the disconnect, and a row left by a node that died is ignored once stale.

    Times are seconds since 1970 by the nodes' clocks."""

    __tablename__ = "presence"
    __table_args__ = (UniqueConstraint("node", "handle", name="uq_presence_node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(32))
    handle: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    viewing: Mapped[int | None] = mapped_column(Integer, index=True)
    typing_until: Mapped[float | None] = mapped_column(Float)
    seen_at: Mapped[float] = mapped_column(Float, index=True)


class AuditRow(Base):
    """One thing an agent, an admin or an integration did (who, what, when, from where):
    the audit log admins read. ``actor`` is the agent's name as it was then."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    agent_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    origin: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ChannelStateRow(Base):
    """What a messaging platform's channel keeps for every node and across restarts: an
    access token (whoever refreshes it stores it here), a sync cursor. ``expires_at``
    in seconds since 1970, None for what does not expire."""

    __tablename__ = "channel_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float | None] = mapped_column(Float)


class LoginThrottleRow(Base):
    """A failed-login count of one key of the login limiter (a name from an address,
    an address, a name), or a name and address that signed in (``trusted``). The key
    is the SHA-256 of what is counted; times are seconds since 1970."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last: Mapped[float] = mapped_column(Float, index=True)
    next_allowed: Mapped[float] = mapped_column(Float)
    trusted: Mapped[bool] = mapped_column(Boolean)


class RateBucketRow(Base):
    """A token bucket shared by the nodes (web-chat messages per visitor and address,
    new chats per address): ``level`` tokens at ``stamp`` (seconds since 1970 by the
    database's clock), full again at ``full_at``; ``passed``: whether the last take
    got a token."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)
    full_at: Mapped[float] = mapped_column(Float, index=True)
    passed: Mapped[bool] = mapped_column(Boolean)


class CannedReplyRow(Base):
    """A saved reply: an agent's own (``owner_id``), a team's (``team``), or everyone's
    (neither). A macro also tags, sets the priority or resolves when it is sent."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    team: Mapped[str | None] = mapped_column(String(60), index=True)
    # The macro's actions: tags added, priority set, resolved after sending.
    tags: Mapped[list[Any] | None]
    priority: Mapped[int | None] = mapped_column(Integer)
    resolve: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
