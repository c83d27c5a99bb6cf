"""The audit log, and a contact: export, erase, attributes."""

from __future__ import annotations

import logging
import math

from aiohttp import web

from channels.base import encodable
from router.errors import ApiError
from router.inbox import presenters
from router.inbox.api.common import (
    agent_of,
    json_body,
    json_response,
    path_id,
)
from router.keys import (
    DATABASE,
    DESK,
    FILES,
)

logger = logging.getLogger(__name__)


async def audit_log(request: web.Request) -> web.Response:
    """``?action=&agent=&before=&limit=``: the audit log, newest first; admins only."""
    agent = await agent_of(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins read the audit log")
    query = request.query

    def number(name: str, default: int | None, top: int = 2**62) -> int | None:
        raw = query.get(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= top:
            raise ApiError(400, "invalid_query", f"{name} must be a positive integer")
        return int(raw)

    limit = number("limit", 100, 500)
    assert limit is not None
    async with request.app[DATABASE].read() as repo:
        entries = await repo.audit_entries(
            limit=limit,
            before_id=number("before", None),
            action=query.get("action") or None,
            agent_id=number("agent", None),
        )
    return json_response({"entries": [presenters.audit_entry(e) for e in entries]})


def _contact_id(request: web.Request) -> int:
    return path_id(request, "contact_id", "contact")


async def export_contact(request: web.Request) -> web.Response:
    """Everything RelayDesk holds of a contact, as JSON; admins only."""
    agent = await agent_of(request)
    contact_id = _contact_id(request)
    desk = request.app[DESK]
    ids = await desk.contact_conversations(contact_id, agent)
    async with request.app[DATABASE].read() as repo:
        contact = await repo.contact(contact_id)
        identities = await repo.identities(contact_id)
    assert contact is not None
    return json_response(
        {
            "contact": {
                "id": contact.id,
                "display_name": contact.display_name,
                "email": contact.email,
                "attributes": dict(contact.attributes),
                "created_at": presenters.time(contact.created_at),
            },
            "identities": [
                {"channel": i.channel, "external_id": i.external_id, "display_name": i.display_name}
                for i in identities
            ],
            "conversations": [presenters.detail(await desk.detail(cid, agent)) for cid in ids],
        }
    )


async def erase_contact(request: web.Request) -> web.Response:
    """Erase a contact's messages, files, names and addresses; admins only."""
    agent = await agent_of(request)
    erased = await request.app[DESK].erase_contact(
        _contact_id(request), agent, request.app[FILES].root
    )
    return json_response(
        {
            "conversations": erased.conversations,
            "messages": erased.messages,
            "files": len(erased.attachment_refs),
        }
    )


async def contact_attributes(request: web.Request) -> web.Response:
    """``{"vip": true, "tier": "gold"}`` replaces what the shop says of a contact
    (strings up to 200 characters, numbers, true/false; up to 30 keys); routing rules
    read it at the next handoff."""
    agent = await agent_of(request)
    contact_id = _contact_id(request)
    body = await json_body(request)
    if len(body) > 30:
        raise ApiError(400, "invalid_body", "at most 30 attributes")
    for key, value in body.items():
        if len(key) > 100 or not encodable(key):
            raise ApiError(400, "invalid_body", "a key is up to 100 characters")
        if not (
            isinstance(value, (bool, int, float))
            or (isinstance(value, str) and len(value) <= 200 and encodable(value))
        ) or (isinstance(value, float) and not math.isfinite(value)):
            raise ApiError(400, "invalid_body", f"{key}: a string, number or true/false")
    await request.app[DESK].set_contact_attributes(contact_id, agent, body)
    return json_response({"contact_id": contact_id, "attributes": body})
