"""The audit log of agent and admin actions: who, what, when, from where.

An entry is written by the unit of work that makes the change (``Work.audit``), so
it commits or rolls back with it. Where a request came from (``inbox 203.0.113.7``,
``api 10.0.0.3``, or ``cli`` for the command line) is set once per request by
``audit_middleware`` and read here, so the desk's code does not carry it around.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from channels.http import ClientAddresses
from router.storage import Agent, Repositories

__all__ = ["ORIGIN", "audit_middleware", "origin", "record"]

ORIGIN: ContextVar[str | None] = ContextVar("relaydesk_audit_origin", default=None)


def origin() -> str | None:
    """Where the current action comes from, if anyone said."""
    return ORIGIN.get()


async def record(
    repo: Repositories,
    now: datetime,
    agent: Agent | None,
    action: str,
    target: str,
    target_id: int | None,
    **detail: Any,
) -> None:
    """Record in the audit log, in ``repo``'s transaction, that ``agent`` (None:
    RelayDesk itself) did ``action`` to ``target`` ``target_id``, from the request's
    origin; details that are None are left out."""
    await repo.add_audit(
        at=now,
        agent_id=agent.id if agent else None,
        actor=agent.name if agent else "relaydesk",
        action=action,
        target=target,
        target_id=target_id,
        detail={k: v for k, v in detail.items() if v is not None},
        origin=origin(),
    )


def audit_middleware(addresses: ClientAddresses) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        surface = "api" if request.path.startswith("/api/") else "inbox"
        token = ORIGIN.set(f"{surface} {addresses.of(request)}")
        try:
            return await handler(request)
        finally:
            ORIGIN.reset(token)

    return middleware
