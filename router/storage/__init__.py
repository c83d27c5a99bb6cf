"""Storage: ORM rows stay in here; repositories hand out records."""

from router.storage.db import Database
from router.storage.inbox_queries import QueueFilter, SeenBy
from router.storage.records import (
    Agent,
    Contact,
    Conversation,
    Handoff,
    Identity,
    Message,
    OutboxItem,
    Scheduled,
    SlaTimer,
)
from router.storage.report_queries import ReportFilter
from router.storage.repositories import Repositories

__all__ = [
    "Agent",
    "Contact",
    "Conversation",
    "Database",
    "Handoff",
    "Identity",
    "Message",
    "OutboxItem",
    "QueueFilter",
    "ReportFilter",
    "Repositories",
    "Scheduled",
    "SeenBy",
    "SlaTimer",
]
