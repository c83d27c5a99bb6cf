"""The desk: agents and their sessions, promises (SLA timers), scheduled work, settings,
presence, the audit log, channel state, throttles and saved replies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from router.storage.models.base import Base

__all__ = [
    "AgentRow",
    "AuditRow",
    "CannedReplyRow",
    "ChannelStateRow",
    "LoginThrottleRow",
    "PresenceRow",
    "RateBucketRow",
    "ScheduledRow",
    "SessionRow",
    "SettingRow",
    "SlaTimerRow",
]


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
