"""Repositories: every query the router makes, each returning records.

One ``Repositories`` wraps one ``AsyncSession`` (one unit of work); the caller
owns the transaction. Everything is dialect-neutral SQL except the
``FOR UPDATE SKIP LOCKED`` hint, which SQLite ignores (it has one writer anyway).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.agent_queries import AgentQueries
from router.storage.audit_queries import AuditQueries
from router.storage.canned_queries import CannedQueries
from router.storage.case_queries import CaseQueries
from router.storage.contact_queries import ContactQueries
from router.storage.conversation_changes import ConversationChanges
from router.storage.conversation_queries import ConversationQueries
from router.storage.gap_queries import GapQueries
from router.storage.inbox_queries import InboxQueries
from router.storage.message_queries import MessageQueries
from router.storage.outbox_queries import OutboxQueries
from router.storage.privacy_queries import PrivacyQueries
from router.storage.promise_queries import PromiseQueries
from router.storage.report_queries import ReportQueries
from router.storage.settings_queries import SettingsQueries
from router.storage.shared_queries import SharedStateQueries
from router.storage.webchat_queries import WebChatQueries

__all__ = ["Repositories"]


class Repositories(
    AgentQueries,
    AuditQueries,
    CannedQueries,
    CaseQueries,
    ContactQueries,
    ConversationChanges,
    ConversationQueries,
    GapQueries,
    InboxQueries,
    MessageQueries,
    OutboxQueries,
    PrivacyQueries,
    PromiseQueries,
    ReportQueries,
    SettingsQueries,
    SharedStateQueries,
    WebChatQueries,
):
    """All queries of one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
