"""The agents' inbox: the REST API and the web app."""

from router.inbox.accounts import Accounts, LoginLimiter
from router.inbox.api import (
    ATTACHMENTS,
    DATABASE,
    DESK,
    EVENT_BUS,
    agent_routes,
    error_middleware,
    hash_token,
)
from router.inbox.assign import AutoAssigner
from router.inbox.openapi import openapi_document, openapi_route
from router.inbox.presence import Presence
from router.inbox.session import (
    ACCOUNTS,
    CLIENT_ADDRESSES,
    INBOX_BOT,
    KNOWLEDGE_PATH,
    PRESENCE,
    RELOAD_BOT,
)
from router.inbox.web import inbox_routes

__all__ = [
    "ACCOUNTS",
    "ATTACHMENTS",
    "CLIENT_ADDRESSES",
    "DATABASE",
    "DESK",
    "EVENT_BUS",
    "INBOX_BOT",
    "KNOWLEDGE_PATH",
    "PRESENCE",
    "RELOAD_BOT",
    "Accounts",
    "AutoAssigner",
    "LoginLimiter",
    "Presence",
    "agent_routes",
    "error_middleware",
    "hash_token",
    "inbox_routes",
    "openapi_document",
    "openapi_route",
]
