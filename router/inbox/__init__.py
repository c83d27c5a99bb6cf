"""The agents' inbox: the REST API (and, later, the web app)."""

from router.inbox.api import (
    ATTACHMENTS,
    DATABASE,
    DESK,
    EVENT_BUS,
    agent_routes,
    error_middleware,
    hash_token,
)

__all__ = [
    "ATTACHMENTS",
    "DATABASE",
    "DESK",
    "EVENT_BUS",
    "agent_routes",
    "error_middleware",
    "hash_token",
]
