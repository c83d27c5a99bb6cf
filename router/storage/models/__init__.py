"""ORM rows. They stay inside ``router.storage``; repositories hand out dataclasses.

Importing this package registers every table on ``Base.metadata`` (migrations and
tests compare against it)."""

from router.storage.models.base import Base, UTCDateTime
from router.storage.models.conversations import (
    ContactRow,
    ConversationRow,
    GapQuestionRow,
    HandoffRow,
    IdentityRow,
    MessageRow,
    OutboxRow,
    WebChatFrameRow,
)
from router.storage.models.desk import (
    AgentRow,
    AuditRow,
    CannedReplyRow,
    ChannelStateRow,
    LoginThrottleRow,
    PresenceRow,
    RateBucketRow,
    ScheduledRow,
    SessionRow,
    SettingRow,
    SlaTimerRow,
)

__all__ = [
    "AgentRow",
    "AuditRow",
    "Base",
    "CannedReplyRow",
    "ChannelStateRow",
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
    "UTCDateTime",
    "WebChatFrameRow",
]
