"""Conversation states, priorities, and which transitions are allowed."""

from __future__ import annotations

import enum

__all__ = ["AuthorKind", "ConversationStatus", "Direction", "Priority", "can_claim"]


class ConversationStatus(enum.StrEnum):
    """``bot``: the front line answers. ``queued``: waiting for a person.
    ``assigned``: a person owns it. ``resolved``: closed; a new message opens a new one."""

    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"

    @property
    def with_humans(self) -> bool:
        return self in (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED)


class Priority(enum.IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Priority:
        if isinstance(value, int):
            return cls(value)
        return cls[value.upper()]


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"
    NOTE = "note"


class AuthorKind(enum.StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


CLAIMABLE = (ConversationStatus.BOT, ConversationStatus.QUEUED)


def can_claim(status: ConversationStatus) -> bool:
    """An agent may take a conversation from the bot or from the queue, never from another agent."""
    return status in CLAIMABLE
