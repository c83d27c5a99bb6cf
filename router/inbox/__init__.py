"""The agents' inbox: the REST API and the web app."""

from router.inbox.accounts import Accounts, DatabaseThrottles, LoginLimiter, hash_token
from router.inbox.api import agent_routes
from router.inbox.assign import AutoAssigner
from router.inbox.openapi import openapi_document, openapi_route
from router.inbox.presence import Presence
from router.inbox.web import inbox_routes

__all__ = [
    "Accounts",
    "AutoAssigner",
    "DatabaseThrottles",
    "LoginLimiter",
    "Presence",
    "agent_routes",
    "hash_token",
    "inbox_routes",
    "openapi_document",
    "openapi_route",
]
