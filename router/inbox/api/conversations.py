"""Conversations: list, read, claim, reply, note, resolve, assign, change, reopen,
split and merge, deliveries, the live events, similar past cases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channels.base import encodable
from router.conversations import ConversationStatus, Priority
from router.delivery.events import FrameStored, Subscription
from router.delivery.files import Upload, UploadRefused, download, read_form_with_files
from router.desk.actions import HumanDesk
from router.errors import ApiError
from router.inbox import presenters
from router.inbox.api.common import (
    INTEGER,
    MAX_REPLY_CHARS,
    PRIORITIES,
    agent_of,
    conversation_in_path,
    dumps,
    json_body,
    json_response,
    path_id,
    text_body,
    text_of,
)
from router.inbox.keys import LIVE_SOCKETS
from router.keys import (
    ASSIST,
    CANNED,
    DATABASE,
    DESK,
    EVENT_BUS,
    FILES,
    ROUTING_SETTINGS,
)
from router.storage import Agent, Conversation

logger = logging.getLogger(__name__)


_STATUS_SETS: Mapping[str, tuple[ConversationStatus, ...]] = {
    "open": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "all": tuple(ConversationStatus),
    **{s.value: (s,) for s in ConversationStatus},
}


async def me(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    return json_response({"id": agent.id, "name": agent.name})


async def list_conversations(request: web.Request) -> web.Response:
    """``?status=queued|assigned|bot|resolved|open|all`` (default ``open``), ``&mine=true``,
    ``&team=<key>|mine`` (a team's, or the caller's teams')."""
    agent = await agent_of(request)
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
    return json_response(
        {
            "conversations": [
                {**presenters.summary(c, last[c.id], names), "undelivered": dead.get(c.id, 0)}
                for c in conversations
            ]
        }
    )


async def get_conversation(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    detail = await request.app[DESK].detail(conversation_in_path(request), agent)
    return json_response(presenters.detail(detail))


async def claim(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    conversation = await request.app[DESK].claim(conversation_in_path(request), agent)
    return json_response(presenters.summary(conversation, None, {agent.id: agent.name}))


async def reply(request: web.Request) -> web.Response:
    """A reply as JSON, or as multipart/form-data with ``files`` attached."""
    agent = await agent_of(request)
    uploads: list[Upload] = []
    if request.content_type.startswith("multipart/"):
        body, uploads = await _reply_form(request)
    else:
        body = await json_body(request)
    text = text_of(body, may_be_empty=bool(uploads))
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
    conversation_id = conversation_in_path(request)
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
    return json_response(
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
            max_field_chars=MAX_REPLY_CHARS,
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
            body[key] = int(value) if INTEGER.fullmatch(value) else value
    waits = fields.get("wait_for_customer", "").strip().lower()
    if waits:
        body["wait_for_customer"] = {"true": True, "false": False}.get(waits, waits)
    return body, uploads


async def note(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    text = await text_body(request)
    message = await request.app[DESK].note(conversation_in_path(request), agent, text)
    return json_response({"message_id": message.id}, status=201)


async def resolve(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    conversation = await request.app[DESK].resolve(conversation_in_path(request), agent)
    return json_response(presenters.summary(conversation, None, {agent.id: agent.name}))


async def _summary(request: web.Request, conversation: Conversation) -> web.Response:
    """The conversation as the list shows it, with its assignee's name."""
    async with request.app[DATABASE].read() as repo:
        names = await repo.agent_names(
            [conversation.assignee_id] if conversation.assignee_id else []
        )
    return json_response(presenters.summary(conversation, None, names))


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
    agent = await agent_of(request)
    body = await json_body(request)
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
        conversation = await desk.transfer(conversation_in_path(request), agent, team, target)
    else:
        conversation = await desk.assign(conversation_in_path(request), agent, target)
    return await _summary(request, conversation)


async def update(request: web.Request) -> web.Response:
    """``{"tags": [...], "priority": "low|normal|high|urgent"}``, either or both."""
    agent = await agent_of(request)
    body = await json_body(request)
    tags = body.get("tags")
    if "tags" in body and (
        not isinstance(tags, list)
        or len(tags) > 50
        or not all(isinstance(t, str) and len(t) <= 200 and encodable(t) for t in tags)
    ):
        raise ApiError(400, "invalid_body", "'tags' must be a list of up to 50 strings")
    priority = body.get("priority")
    if "priority" in body and priority not in PRIORITIES:
        raise ApiError(400, "invalid_body", f"'priority' must be one of {', '.join(PRIORITIES)}")
    if tags is None and priority is None:
        raise ApiError(400, "invalid_body", "give 'tags', 'priority' or both")
    conversation = await request.app[DESK].update(
        conversation_in_path(request),
        agent,
        tags=tags,
        priority=None if priority is None else Priority.parse(priority),
    )
    return await _summary(request, conversation)


async def reopen(request: web.Request) -> web.Response:
    """Open a resolved conversation again: for ``{"agent_id": id}`` (default: the
    caller), or the queue with ``{"agent_id": null}``."""
    agent = await agent_of(request)
    body = await json_body(request) if request.can_read_body else {}
    target = await _target_agent(request, body, "agent_id") if "agent_id" in body else agent
    if target is not None and not target.active:
        raise ApiError(409, "not_allowed", f"{target.name} is disabled")
    conversation = await request.app[DESK].reopen(
        conversation_in_path(request), agent, assignee=target
    )
    return await _summary(request, conversation)


async def split(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    message_id = path_id(request, "message_id", "message")
    conversation = await request.app[DESK].split(conversation_in_path(request), message_id, agent)
    return json_response(presenters.summary(conversation, None, {agent.id: agent.name}), status=201)


async def merge(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    message_id = path_id(request, "message_id", "message")
    conversation = await request.app[DESK].merge(conversation_in_path(request), message_id, agent)
    return json_response(presenters.summary(conversation, None, {agent.id: agent.name}))


async def resend(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    delivery_id = path_id(request, "delivery_id", "delivery")
    conversation_id = conversation_in_path(request)
    await request.app[DESK].resend(conversation_id, delivery_id, agent)
    return json_response(
        {"id": delivery_id, "conversation_id": conversation_id, "status": "pending"}
    )


async def attachment(request: web.Request) -> web.StreamResponse:
    """A file a customer (or an agent) sent, always as a download: never rendered."""
    await agent_of(request)
    try:
        return download(
            request.app[FILES].root, request.match_info["ref"], request.query.get("name")
        )
    except web.HTTPNotFound as exc:
        raise ApiError(404, "not_found", "no such attachment") from exc


async def typing(request: web.Request) -> web.Response:
    agent = await agent_of(request)
    await request.app[DESK].typing(conversation_in_path(request), agent)
    return json_response({"status": "sent"}, status=202)


async def events(request: web.Request) -> web.WebSocketResponse:
    """A websocket of everything that happens (that the caller may see), one JSON object
    per event, for live screens."""
    agent = await agent_of(request)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    request.app[LIVE_SOCKETS].add(ws)
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
            try:
                await ws.send_str(dumps(presenters.event_frame(event)))
            except ConnectionError:
                return  # the agent went away (or the service stops) mid-send


async def deliveries(request: web.Request) -> web.Response:
    """Replies by delivery status; ``?status=dead`` (default) lists what never got through."""
    await agent_of(request)
    status = request.query.get("status", "dead")
    if status not in ("pending", "sent", "dead"):
        raise ApiError(400, "invalid_query", "status must be pending, sent or dead")
    async with request.app[DATABASE].read() as repo:
        items = await repo.outbox_by_status(status)
    return json_response({"deliveries": [presenters.delivery(i) for i in items]})


async def similar(request: web.Request) -> web.Response:
    """Up to three resolved conversations like this one, each with the reply that
    resolved it (router.desk.assist)."""
    agent = await agent_of(request)
    found = await request.app[ASSIST].for_agent(
        request.app[DESK], conversation_in_path(request), agent
    )
    return json_response(found)
