"""The agent REST API under ``/api/agent/``.

Token auth (``Authorization: Bearer …``; ``relaydesk agents add NAME`` prints a
token). Errors always have one shape: ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from channels.base import encodable
from router.conversations import ConversationStatus, Priority
from router.delivery.events import FrameStored, Subscription
from router.delivery.files import Upload, UploadRefused, download, read_form_with_files
from router.desk.actions import HumanDesk
from router.desk.canned import CannedDraft
from router.errors import ApiError
from router.inbox import presenters
from router.inbox.accounts import hash_token
from router.keys import (
    AFTERCARE,
    ASSIST,
    CANNED,
    CLOCK,
    DATABASE,
    DESK,
    EVENT_BUS,
    FILES,
    ROUTING_SETTINGS,
    SLA_SETTINGS,
    TIMEZONE,
)
from router.settings.editable import SettingsRefused
from router.storage import Agent, Conversation

__all__ = [
    "agent_routes",
]

logger = logging.getLogger(__name__)


_MAX_REPLY_CHARS = 20_000
_INTEGER = re.compile(r"-?[0-9]{1,40}")
# What the OpenAPI document's "\\S" (an ECMAScript regex) counts as blank: the
# same text is refused by both, and nothing else is.
_BLANK = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000\ufeff")
)


def _json(data: Any, *, status: int = 200) -> web.Response:
    # Customers write Chinese: keep it readable on the wire.
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


async def _agent(request: web.Request) -> Agent:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <agent token>'")
    async with request.app[DATABASE].read() as repo:
        agent = await repo.agent_by_token_hash(hash_token(token.strip()))
    if agent is None or not agent.active:
        raise ApiError(401, "unauthorized", "unknown or disabled agent token")
    return agent


def _path_id(request: web.Request, name: str, what: str) -> int:
    """The numeric id in the path's ``name``; a 404 naming ``what`` for anything else."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", f"no {what} {raw}")
    return int(raw)


def _conversation_id(request: web.Request) -> int:
    return _path_id(request, "conversation_id", "conversation")


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    try:
        body = await request.json()
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the parser goes is not a JSON we take.
        raise ApiError(
            400, "invalid_json", "the body must be JSON (and not nested deeply)"
        ) from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return body


async def _text_body(request: web.Request) -> str:
    return _text(await _json_body(request))


def _text(body: Mapping[str, Any], *, may_be_empty: bool = False) -> str:
    """The body's ``text``: non-empty unless ``may_be_empty`` (a reply with files)."""
    text = body.get("text", "" if may_be_empty else None)
    if not isinstance(text, str) or not (may_be_empty or text.strip(_BLANK)):
        raise ApiError(400, "invalid_body", "'text' must be a non-empty string")
    if len(text) > _MAX_REPLY_CHARS:
        raise ApiError(400, "invalid_body", f"'text' is limited to {_MAX_REPLY_CHARS} characters")
    if not encodable(text):
        raise ApiError(400, "invalid_body", "'text' holds an unpaired surrogate (\\ud800-\\udfff)")
    return text.strip(_BLANK)


_PRIORITIES = ("low", "normal", "high", "urgent")
_STATUS_SETS: Mapping[str, tuple[ConversationStatus, ...]] = {
    "open": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "all": tuple(ConversationStatus),
    **{s.value: (s,) for s in ConversationStatus},
}


async def me(request: web.Request) -> web.Response:
    agent = await _agent(request)
    return _json({"id": agent.id, "name": agent.name})


async def list_conversations(request: web.Request) -> web.Response:
    """``?status=queued|assigned|bot|resolved|open|all`` (default ``open``), ``&mine=true``,
    ``&team=<key>|mine`` (a team's, or the caller's teams')."""
    agent = await _agent(request)
    status = request.query.get("status", "open")
    if status not in _STATUS_SETS:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(_STATUS_SETS)}")
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
        raise ApiError(400, "invalid_query", "limit must be an integer from 1 to 500")
    limit = int(raw_limit)
    mine_flag = request.query.get("mine", "false")
    if mine_flag not in ("true", "false"):
        raise ApiError(400, "invalid_query", "mine must be true or false")
    mine = mine_flag == "true"
    routing = request.app[ROUTING_SETTINGS].routing
    team = request.query.get("team")
    teams: list[str] | None = None
    if team == "mine":
        teams = routing.teams_of(agent.name)
    elif team is not None:
        if team not in routing.teams:
            raise ApiError(400, "invalid_query", "team must be a team's key or mine")
        teams = [team]
    desk = request.app[DESK]
    conversations, last = await desk.queue(
        statuses=_STATUS_SETS[status],
        assignee_id=agent.id if mine else None,
        limit=limit,
        teams=teams,
        viewer=agent,
    )
    async with request.app[DATABASE].read() as repo:
        names = await repo.agent_names(c.assignee_id for c in conversations if c.assignee_id)
        dead = await repo.dead_counts([c.id for c in conversations])
    return _json(
        {
            "conversations": [
                {**presenters.summary(c, last[c.id], names), "undelivered": dead.get(c.id, 0)}
                for c in conversations
            ]
        }
    )


async def get_conversation(request: web.Request) -> web.Response:
    agent = await _agent(request)
    detail = await request.app[DESK].detail(_conversation_id(request), agent)
    return _json(presenters.detail(detail))


async def claim(request: web.Request) -> web.Response:
    agent = await _agent(request)
    conversation = await request.app[DESK].claim(_conversation_id(request), agent)
    return _json(presenters.summary(conversation, None, {agent.id: agent.name}))


async def reply(request: web.Request) -> web.Response:
    """A reply as JSON, or as multipart/form-data with ``files`` attached."""
    agent = await _agent(request)
    uploads: list[Upload] = []
    if request.content_type.startswith("multipart/"):
        body, uploads = await _reply_form(request)
    else:
        body = await _json_body(request)
    text = _text(body, may_be_empty=bool(uploads))
    seen = body.get("seen_message_id")
    if seen is not None and (not isinstance(seen, int) or isinstance(seen, bool)):
        raise ApiError(400, "invalid_body", "'seen_message_id' must be an integer")
    waits = body.get("wait_for_customer")
    if waits is not None and not isinstance(waits, bool):
        raise ApiError(400, "invalid_body", "'wait_for_customer' must be true, false or null")
    macro_id = body.get("macro_id")
    if macro_id is not None and (
        not isinstance(macro_id, int) or isinstance(macro_id, bool) or not 1 <= macro_id < 2**63
    ):
        raise ApiError(400, "invalid_body", "'macro_id' must be a saved reply's id")
    macro = None if macro_id is None else await request.app[CANNED].get(agent, macro_id)
    conversation_id = _conversation_id(request)
    files = request.app[FILES]
    kept = await files.keep(conversation_id, uploads)
    try:
        message = await request.app[DESK].reply(
            conversation_id,
            agent,
            text,
            seen_message_id=seen,
            wait_for_customer=waits,
            macro=macro,
            attachments=kept,
        )
    except BaseException:
        files.forget(kept)
        raise
    return _json(
        {"message_id": message.id, "status": "queued", "attachments": len(kept)}, status=202
    )


async def _reply_form(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """A multipart reply's fields, typed as its JSON form would be, and its files."""
    files = request.app[FILES]
    if files.max_bytes <= 0:
        raise ApiError(403, "attachments_off", "agents do not send files on this desk")
    try:
        fields, uploads = await read_form_with_files(
            request,
            max_bytes=files.max_bytes,
            max_files=files.max_files,
            max_field_chars=_MAX_REPLY_CHARS,
        )
    except UploadRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    if not uploads:
        raise ApiError(400, "invalid_body", "a multipart reply carries 'files'; text alone is JSON")
    unknown = set(fields) - {"text", "seen_message_id", "wait_for_customer", "macro_id"}
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown fields: {', '.join(sorted(unknown))[:200]}")
    body: dict[str, Any] = {}
    if "text" in fields:
        body["text"] = fields["text"]
    for key in ("seen_message_id", "macro_id"):
        value = fields.get(key, "").strip()
        if value:
            body[key] = int(value) if _INTEGER.fullmatch(value) else value
    waits = fields.get("wait_for_customer", "").strip().lower()
    if waits:
        body["wait_for_customer"] = {"true": True, "false": False}.get(waits, waits)
    return body, uploads


async def note(request: web.Request) -> web.Response:
    agent = await _agent(request)
    text = await _text_body(request)
    message = await request.app[DESK].note(_conversation_id(request), agent, text)
    return _json({"message_id": message.id}, status=201)


async def resolve(request: web.Request) -> web.Response:
    agent = await _agent(request)
    conversation = await request.app[DESK].resolve(_conversation_id(request), agent)
    return _json(presenters.summary(conversation, None, {agent.id: agent.name}))


async def _summary(request: web.Request, conversation: Conversation) -> web.Response:
    """The conversation as the list shows it, with its assignee's name."""
    async with request.app[DATABASE].read() as repo:
        names = await repo.agent_names(
            [conversation.assignee_id] if conversation.assignee_id else []
        )
    return _json(presenters.summary(conversation, None, names))


async def _target_agent(request: web.Request, body: Mapping[str, Any], key: str) -> Agent | None:
    """The agent ``body[key]`` names (null: nobody); a 400 for anything but an agent's
    id, a 404 for an agent there is not."""
    raw = body.get(key)
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw < 2**63:
        raise ApiError(400, "invalid_body", f"'{key}' must be an agent's id or null")
    async with request.app[DATABASE].read() as repo:
        target = await repo.agent(raw)
    if target is None:
        raise ApiError(404, "not_found", f"no agent {raw}")
    return target


async def assign(request: web.Request) -> web.Response:
    """``{"agent_id": id}`` gives the conversation to that agent, ``null`` back to the
    queue (a transfer: the owner or an admin may; anyone for an unowned one);
    ``{"team": "key"}`` moves it to that team's queue (null: everyone's), with
    ``agent_id`` to a member of it at once."""
    agent = await _agent(request)
    body = await _json_body(request)
    if "agent_id" not in body and "team" not in body:
        raise ApiError(400, "invalid_body", "give 'agent_id' (null: the queue), 'team' or both")
    unknown = set(body) - {"agent_id", "team"}
    if unknown:
        raise ApiError(400, "invalid_body", f"unknown keys: {', '.join(sorted(unknown))[:200]}")
    target = await _target_agent(request, body, "agent_id")
    desk = request.app[DESK]
    if "team" in body:
        team = body["team"]
        if team is not None and (not isinstance(team, str) or not team or len(team) > 60):
            raise ApiError(400, "invalid_body", "'team' must be a team's key or null")
        conversation = await desk.transfer(_conversation_id(request), agent, team, target)
    else:
        conversation = await desk.assign(_conversation_id(request), agent, target)
    return await _summary(request, conversation)


async def update(request: web.Request) -> web.Response:
    """``{"tags": [...], "priority": "low|normal|high|urgent"}``, either or both."""
    agent = await _agent(request)
    body = await _json_body(request)
    tags = body.get("tags")
    if "tags" in body and (
        not isinstance(tags, list)
        or len(tags) > 50
        or not all(isinstance(t, str) and len(t) <= 200 and encodable(t) for t in tags)
    ):
        raise ApiError(400, "invalid_body", "'tags' must be a list of up to 50 strings")
    priority = body.get("priority")
    if "priority" in body and priority not in _PRIORITIES:
        raise ApiError(400, "invalid_body", f"'priority' must be one of {', '.join(_PRIORITIES)}")
    if tags is None and priority is None:
        raise ApiError(400, "invalid_body", "give 'tags', 'priority' or both")
    conversation = await request.app[DESK].update(
        _conversation_id(request),
        agent,
        tags=tags,
        priority=None if priority is None else Priority.parse(priority),
    )
    return await _summary(request, conversation)


async def reopen(request: web.Request) -> web.Response:
    """Open a resolved conversation again: for ``{"agent_id": id}`` (default: the
    caller), or the queue with ``{"agent_id": null}``."""
    agent = await _agent(request)
    body = await _json_body(request) if request.can_read_body else {}
    target = await _target_agent(request, body, "agent_id") if "agent_id" in body else agent
    if target is not None and not target.active:
        raise ApiError(409, "not_allowed", f"{target.name} is disabled")
    conversation = await request.app[DESK].reopen(_conversation_id(request), agent, assignee=target)
    return await _summary(request, conversation)


async def audit_log(request: web.Request) -> web.Response:
    """``?action=&agent=&before=&limit=``: the audit log, newest first; admins only."""
    agent = await _agent(request)
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
    return _json({"entries": [presenters.audit_entry(e) for e in entries]})


def _contact_id(request: web.Request) -> int:
    return _path_id(request, "contact_id", "contact")


async def export_contact(request: web.Request) -> web.Response:
    """Everything RelayDesk holds of a contact, as JSON; admins only."""
    agent = await _agent(request)
    contact_id = _contact_id(request)
    desk = request.app[DESK]
    ids = await desk.contact_conversations(contact_id, agent)
    async with request.app[DATABASE].read() as repo:
        contact = await repo.contact(contact_id)
        identities = await repo.identities(contact_id)
    assert contact is not None
    return _json(
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
    agent = await _agent(request)
    erased = await request.app[DESK].erase_contact(
        _contact_id(request), agent, request.app[FILES].root
    )
    return _json(
        {
            "conversations": erased.conversations,
            "messages": erased.messages,
            "files": len(erased.attachment_refs),
        }
    )


async def split(request: web.Request) -> web.Response:
    agent = await _agent(request)
    message_id = _path_id(request, "message_id", "message")
    conversation = await request.app[DESK].split(_conversation_id(request), message_id, agent)
    return _json(presenters.summary(conversation, None, {agent.id: agent.name}), status=201)


async def merge(request: web.Request) -> web.Response:
    agent = await _agent(request)
    message_id = _path_id(request, "message_id", "message")
    conversation = await request.app[DESK].merge(_conversation_id(request), message_id, agent)
    return _json(presenters.summary(conversation, None, {agent.id: agent.name}))


async def resend(request: web.Request) -> web.Response:
    agent = await _agent(request)
    delivery_id = _path_id(request, "delivery_id", "delivery")
    conversation_id = _conversation_id(request)
    await request.app[DESK].resend(conversation_id, delivery_id, agent)
    return _json({"id": delivery_id, "conversation_id": conversation_id, "status": "pending"})


async def attachment(request: web.Request) -> web.StreamResponse:
    """A file a customer (or an agent) sent, always as a download: never rendered."""
    await _agent(request)
    try:
        return download(
            request.app[FILES].root, request.match_info["ref"], request.query.get("name")
        )
    except web.HTTPNotFound as exc:
        raise ApiError(404, "not_found", "no such attachment") from exc


async def typing(request: web.Request) -> web.Response:
    agent = await _agent(request)
    await request.app[DESK].typing(_conversation_id(request), agent)
    return _json({"status": "sent"}, status=202)


async def events(request: web.Request) -> web.WebSocketResponse:
    """A websocket of everything that happens (that the caller may see), one JSON object
    per event, for live screens."""
    agent = await _agent(request)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    async with request.app[EVENT_BUS].subscribe() as subscription:
        pump = asyncio.ensure_future(_pump(ws, subscription, request.app[DESK], agent))
        try:
            async for _ in ws:
                pass  # nothing to receive; the loop ends when the agent goes away
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    return ws


async def _pump(
    ws: web.WebSocketResponse, subscription: Subscription, desk: HumanDesk, agent: Agent
) -> None:
    async for event in subscription:
        # Web-chat frames are the web-chat stream's own business.
        if not isinstance(event, FrameStored) and await desk.hears(agent, event):
            await ws.send_str(_dumps(presenters.event_frame(event)))


async def deliveries(request: web.Request) -> web.Response:
    """Replies by delivery status; ``?status=dead`` (default) lists what never got through."""
    await _agent(request)
    status = request.query.get("status", "dead")
    if status not in ("pending", "sent", "dead"):
        raise ApiError(400, "invalid_query", "status must be pending, sent or dead")
    async with request.app[DATABASE].read() as repo:
        items = await repo.outbox_by_status(status)
    return _json({"deliveries": [presenters.delivery(i) for i in items]})


async def similar(request: web.Request) -> web.Response:
    """Up to three resolved conversations like this one, each with the reply that
    resolved it (router.desk.assist)."""
    agent = await _agent(request)
    found = await request.app[ASSIST].for_agent(request.app[DESK], _conversation_id(request), agent)
    return _json(found)


async def list_scheduled(request: web.Request) -> web.Response:
    agent = await _agent(request)
    items = await request.app[DESK].scheduled(_conversation_id(request), agent)
    return _json({"scheduled": [presenters.scheduled(i) for i in items]})


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
    agent = await _agent(request)
    body = await _json_body(request)
    kind = body.get("kind")
    if kind not in ("follow_up", "reminder"):
        raise ApiError(400, "invalid_body", "'kind' must be follow_up or reminder")
    due_at = _due_time(body, request.app[CLOCK]())
    text = body.get("text")
    if "text" in body and (not isinstance(text, str) or len(text) > 2000 or not encodable(text)):
        raise ApiError(400, "invalid_body", "'text' must be a string of at most 2000 characters")
    item = await request.app[DESK].schedule(
        _conversation_id(request),
        agent,
        kind=kind,
        due_at=due_at,
        text=text.strip(_BLANK) or None if text else None,
    )
    return _json(presenters.scheduled(item), status=201)


async def cancel_scheduled(request: web.Request) -> web.Response:
    agent = await _agent(request)
    item_id = _path_id(request, "item_id", "scheduled item")
    await request.app[DESK].cancel_scheduled(_conversation_id(request), item_id, agent)
    return _json({"id": item_id, "status": "cancelled"})


async def routing(request: web.Request) -> web.Response:
    """The teams and routing rules in force, and the caller's teams."""
    agent = await _agent(request)
    r = request.app[ROUTING_SETTINGS].routing
    return _json({**presenters.routing(r), "my_teams": r.teams_of(agent.name)})


async def change_routing(request: web.Request) -> web.Response:
    """Admins: replace the routing section (teams and rules) on every node."""
    agent = await _agent(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins change teams and routing rules")
    body = await _json_body(request)
    settings = request.app[ROUTING_SETTINGS]
    try:
        await settings.save(body, agent)
    except SettingsRefused as exc:
        raise ApiError(400, "invalid_settings", "; ".join(exc.reasons)) from exc
    return _json({**presenters.routing(settings.routing), "my_teams": []})


async def contact_attributes(request: web.Request) -> web.Response:
    """``{"vip": true, "tier": "gold"}`` replaces what the shop says of a contact
    (strings up to 200 characters, numbers, true/false; up to 30 keys); routing rules
    read it at the next handoff."""
    agent = await _agent(request)
    contact_id = _contact_id(request)
    body = await _json_body(request)
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
    return _json({"contact_id": contact_id, "attributes": body})


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
        (priority is None or priority in _PRIORITIES, f"'priority' must be one of {_PRIORITIES}"),
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
    return _path_id(request, "reply_id", "saved reply")


async def list_canned(request: web.Request) -> web.Response:
    """``?q=words&conversation_id=12``: the saved replies you may use, matching the
    words, each with its placeholders filled for that conversation."""
    agent = await _agent(request)
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
    return _json(
        {
            "replies": [
                presenters.canned(r, may_change=canned.may_change(agent, r), filled=filled)
                for r, filled in found
            ]
        }
    )


async def add_canned(request: web.Request) -> web.Response:
    """A saved reply or macro: yours (``scope`` mine), a team's, or everyone's (admins)."""
    agent = await _agent(request)
    canned = request.app[CANNED]
    reply = await canned.create(agent, _canned_draft(await _json_body(request)))
    return _json(presenters.canned(reply, may_change=True), status=201)


async def change_canned(request: web.Request) -> web.Response:
    agent = await _agent(request)
    canned = request.app[CANNED]
    reply_id = _canned_id(request)
    draft = _canned_draft(await _json_body(request), changing=True)
    reply = await canned.change(agent, reply_id, draft)
    return _json(presenters.canned(reply, may_change=True))


async def delete_canned(request: web.Request) -> web.Response:
    agent = await _agent(request)
    reply_id = _canned_id(request)
    await request.app[CANNED].delete(agent, reply_id)
    return _json({"id": reply_id, "deleted": True})


async def promises(request: web.Request) -> web.Response:
    """The desk's calendars and SLA policies, and whether each calendar is open now."""
    await _agent(request)
    policies = request.app[AFTERCARE].policies
    return _json(presenters.sla_policies(policies, request.app[CLOCK]()))


async def change_promises(request: web.Request) -> web.Response:
    """Admins: replace the SLA section (calendars, policies, survey) on every node."""
    agent = await _agent(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins change business hours and promises")
    body = await _json_body(request)
    try:
        await request.app[SLA_SETTINGS].save(body, agent)
    except SettingsRefused as exc:
        raise ApiError(400, "invalid_settings", "; ".join(exc.reasons)) from exc
    policies = request.app[AFTERCARE].policies
    return _json(presenters.sla_policies(policies, request.app[CLOCK]()))


def agent_routes() -> list[web.RouteDef]:
    base = "/api/agent"
    one = base + "/conversations/{conversation_id}"
    return [
        web.get(base + "/me", me),
        web.get(base + "/conversations", list_conversations),
        web.get(one, get_conversation),
        web.post(one + "/claim", claim),
        web.post(one + "/reply", reply),
        web.post(one + "/notes", note),
        web.post(one + "/resolve", resolve),
        web.post(one + "/reopen", reopen),
        web.post(one + "/assign", assign),
        web.patch(one, update),
        web.post(one + "/typing", typing),
        web.post(one + "/messages/{message_id}/split", split),
        web.post(one + "/messages/{message_id}/merge", merge),
        web.post(one + "/deliveries/{delivery_id}/resend", resend),
        web.get(base + "/events", events),
        web.get(base + "/audit", audit_log),
        web.get(base + "/contacts/{contact_id}/export", export_contact),
        web.post(base + "/contacts/{contact_id}/erase", erase_contact),
        web.get(base + "/deliveries", deliveries),
        web.get(base + "/attachments/{ref:.+}", attachment),
        web.get(one + "/scheduled", list_scheduled),
        web.get(one + "/similar", similar),
        web.post(one + "/scheduled", schedule),
        web.post(one + "/scheduled/{item_id}/cancel", cancel_scheduled),
        web.get(base + "/sla", promises),
        web.put(base + "/sla", change_promises),
        web.get(base + "/canned", list_canned),
        web.post(base + "/canned", add_canned),
        web.put(base + "/canned/{reply_id}", change_canned),
        web.delete(base + "/canned/{reply_id}", delete_canned),
        web.get(base + "/routing", routing),
        web.put(base + "/routing", change_routing),
        web.put(base + "/contacts/{contact_id}/attributes", contact_attributes),
    ]
