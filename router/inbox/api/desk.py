"""The desk's tools and settings: scheduled messages, routing, promises (SLA),
canned replies."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from channels.base import encodable
from router.conversations import Priority
from router.desk.canned import CannedDraft
from router.errors import ApiError
from router.inbox import presenters
from router.inbox.api.common import (
    BLANK,
    PRIORITIES,
    agent_of,
    conversation_in_path,
    json_body,
    json_response,
    path_id,
)
from router.keys import (
    AFTERCARE,
    CANNED,
    CLOCK,
    DESK,
    ROUTING_SETTINGS,
    SLA_SETTINGS,
    TIMEZONE,
)
from router.settings.editable import SettingsRefused

logger = logging.getLogger(__name__)


async def list_scheduled(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    items = await request.app[DESK].scheduled(conversation_in_path(request), agent)
    return json_response({"scheduled": [presenters.scheduled(i) for i in items]})


_MAX_MINUTES = 366 * 24 * 60


def _due_time(body: Mapping[str, Any], now: datetime) -> datetime:
    """``in_minutes`` from now, or ``due_at`` (ISO 8601 with an offset; a time already
    past is due at once): exactly one of them."""
    if ("in_minutes" in body) == ("due_at" in body):
        raise ApiError(400, "invalid_body", "give either 'in_minutes' or 'due_at'")
    if "in_minutes" in body:
        minutes = body["in_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise ApiError(400, "invalid_body", "'in_minutes' must be an integer 1..527040")
        if not 1 <= minutes <= _MAX_MINUTES:
            raise ApiError(400, "invalid_body", "'in_minutes' must be an integer 1..527040")
        return now + timedelta(minutes=minutes)
    due = body["due_at"]
    try:
        parsed = datetime.fromisoformat(due) if isinstance(due, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "invalid_body", "'due_at' must be an ISO 8601 time with a UTC offset")
    return max(parsed, now)


async def schedule(request: web.Request) -> web.Response:
    """``{"kind": "follow_up"|"reminder", "in_minutes": 30 | "due_at": ISO, "text": ...}``."""
    agent = await agent_of(request)
    body = await json_body(request)
    kind = body.get("kind")
    if kind not in ("follow_up", "reminder"):
        raise ApiError(400, "invalid_body", "'kind' must be follow_up or reminder")
    due_at = _due_time(body, request.app[CLOCK]())
    text = body.get("text")
    if "text" in body and (not isinstance(text, str) or len(text) > 2000 or not encodable(text)):
        raise ApiError(400, "invalid_body", "'text' must be a string of at most 2000 characters")
    item = await request.app[DESK].schedule(
        conversation_in_path(request),
        agent,
        kind=kind,
        due_at=due_at,
        text=text.strip(BLANK) or None if text else None,
    )
    return json_response(presenters.scheduled(item), status=201)


async def cancel_scheduled(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    item_id = path_id(request, "item_id", "scheduled item")
    await request.app[DESK].cancel_scheduled(conversation_in_path(request), item_id, agent)
    return json_response({"id": item_id, "status": "cancelled"})


async def routing(request: web.Request) -> web.Response:
    """The teams and routing rules in force, and the caller's teams."""
    agent = await agent_of(request)
    r = request.app[ROUTING_SETTINGS].routing
    return json_response({**presenters.routing(r), "my_teams": r.teams_of(agent.name)})


async def change_routing(request: web.Request) -> web.Response:
    """Admins: replace the routing section (teams and rules) on every node."""
    agent = await agent_of(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins change teams and routing rules")
    body = await json_body(request)
    settings = request.app[ROUTING_SETTINGS]
    try:
        await settings.save(body, agent)
    except SettingsRefused as exc:
        raise ApiError(400, "invalid_settings", "; ".join(exc.reasons)) from exc
    return json_response({**presenters.routing(settings.routing), "my_teams": []})


_SCOPE = re.compile(r"^(mine|everyone|team:[A-Za-z0-9_.-]{1,60})$")


def _canned_draft(body: Mapping[str, Any], *, changing: bool = False) -> CannedDraft:
    """A saved reply from a request body; a 400 naming what is wrong. ``scope``: mine
    (the default), everyone, or team:<key>; a change keeps the reply's scope."""
    unknown = set(body) - {"title", "text", "scope", "tags", "priority", "resolve"}
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown keys: {', '.join(sorted(unknown))[:200]}")
    title, text, scope = body.get("title"), body.get("text"), body.get("scope", "mine")
    tags, priority, resolve = body.get("tags", []), body.get("priority"), body.get("resolve", False)
    checks = [
        (isinstance(title, str) and encodable(title), "'title' must be text"),
        (isinstance(text, str) and encodable(text), "'text' must be text"),
        (
            isinstance(scope, str) and bool(_SCOPE.match(scope)),
            "'scope' must be mine, everyone or team:<key>",
        ),
        (
            isinstance(tags, list) and all(isinstance(t, str) and encodable(t) for t in tags),
            "'tags' must be a list of strings",
        ),
        (priority is None or priority in PRIORITIES, f"'priority' must be one of {PRIORITIES}"),
        (isinstance(resolve, bool), "'resolve' must be true or false"),
    ]
    for ok, why in checks:
        if not ok:
            raise ApiError(400, "invalid_body", why)
    if changing:
        scope = "mine"
    team = scope.removeprefix("team:") if scope.startswith("team:") else None
    try:
        return CannedDraft(
            title=str(title),
            text=str(text),
            scope="team" if team else scope,
            team=team,
            tags=tuple(tags),
            priority=None if priority is None else Priority.parse(priority),
            resolve=resolve,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from exc


def _canned_id(request: web.Request) -> int:
    return path_id(request, "reply_id", "saved reply")


async def list_canned(request: web.Request) -> web.Response:
    """``?q=words&conversation_id=12``: the saved replies you may use, matching the
    words, each with its placeholders filled for that conversation."""
    agent = await agent_of(request)
    raw = request.query.get("conversation_id", "")
    if raw and (not raw.isascii() or not raw.isdigit() or int(raw) < 1):
        raise ApiError(400, "invalid_query", "conversation_id must be a conversation's id")
    canned = request.app[CANNED]
    found = await canned.found(
        agent,
        request.query.get("q", "")[:200],
        # An id no conversation can have fills nothing, like an unknown one.
        conversation_id=int(raw) if raw and len(raw) <= 18 else None,
        zone=request.app[TIMEZONE],
    )
    return json_response(
        {
            "replies": [
                presenters.canned(r, may_change=canned.may_change(agent, r), filled=filled)
                for r, filled in found
            ]
        }
    )


async def add_canned(request: web.Request) -> web.Response:
    """A saved reply or macro: yours (``scope`` mine), a team's, or everyone's (admins)."""
    agent = await agent_of(request)
    canned = request.app[CANNED]
    reply = await canned.create(agent, _canned_draft(await json_body(request)))
    return json_response(presenters.canned(reply, may_change=True), status=201)


async def change_canned(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    canned = request.app[CANNED]
    reply_id = _canned_id(request)
    draft = _canned_draft(await json_body(request), changing=True)
    reply = await canned.change(agent, reply_id, draft)
    return json_response(presenters.canned(reply, may_change=True))


async def delete_canned(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    reply_id = _canned_id(request)
    await request.app[CANNED].delete(agent, reply_id)
    return json_response({"id": reply_id, "deleted": True})


async def promises(request: web.Request) -> web.Response:
    """The desk's calendars and SLA policies, and whether each calendar is open now."""
    await agent_of(request)
    policies = request.app[AFTERCARE].policies
    return json_response(presenters.sla_policies(policies, request.app[CLOCK]()))


async def change_promises(request: web.Request) -> web.Response:
    """Admins: replace the SLA section (calendars, policies, survey) on every node."""
    agent = await agent_of(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins change business hours and promises")
    body = await json_body(request)
    try:
        await request.app[SLA_SETTINGS].save(body, agent)
    except SettingsRefused as exc:
        raise ApiError(400, "invalid_settings", "; ".join(exc.reasons)) from exc
    policies = request.app[AFTERCARE].policies
    return json_response(presenters.sla_policies(policies, request.app[CLOCK]()))
