"""What every handler of the agent API shares: the agent behind the token, the
path's ids, the JSON body and its text, one JSON response shape."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channels.base import encodable
from router.errors import ApiError
from router.inbox.accounts import hash_token
from router.keys import (
    DATABASE,
)
from router.storage import Agent

__all__ = [
    "BLANK",
    "INTEGER",
    "MAX_REPLY_CHARS",
    "PRIORITIES",
    "agent_of",
    "conversation_in_path",
    "dumps",
    "json_body",
    "json_response",
    "path_id",
    "text_body",
    "text_of",
]

MAX_REPLY_CHARS = 20_000
INTEGER = re.compile(r"-?[0-9]{1,40}")
# What the OpenAPI document's "\\S" (an ECMAScript regex) counts as blank: the
# same text is refused by both, and nothing else is.
BLANK = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000\ufeff")
)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    # Customers write Chinese: keep it readable on the wire.
    return web.json_response(data, status=status, dumps=dumps)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


async def agent_of(request: web.Request) -> Agent:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <agent token>'")
    async with request.app[DATABASE].read() as repo:
        agent = await repo.agent_by_token_hash(hash_token(token.strip()))
    if agent is None or not agent.active:
        raise ApiError(401, "unauthorized", "unknown or disabled agent token")
    return agent


def path_id(request: web.Request, name: str, what: str) -> int:
    """The numeric id in the path's ``name``; a 404 naming ``what`` for anything else."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", f"no {what} {raw}")
    return int(raw)


def conversation_in_path(request: web.Request) -> int:
    return path_id(request, "conversation_id", "conversation")


async def json_body(request: web.Request) -> dict[str, Any]:
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


async def text_body(request: web.Request) -> str:
    return text_of(await json_body(request))


def text_of(body: Mapping[str, Any], *, may_be_empty: bool = False) -> str:
    """The body's ``text``: non-empty unless ``may_be_empty`` (a reply with files)."""
    text = body.get("text", "" if may_be_empty else None)
    if not isinstance(text, str) or not (may_be_empty or text.strip(BLANK)):
        raise ApiError(400, "invalid_body", "'text' must be a non-empty string")
    if len(text) > MAX_REPLY_CHARS:
        raise ApiError(400, "invalid_body", f"'text' is limited to {MAX_REPLY_CHARS} characters")
    if not encodable(text):
        raise ApiError(400, "invalid_body", "'text' holds an unpaired surrogate (\\ud800-\\udfff)")
    return text.strip(BLANK)


PRIORITIES = ("low", "normal", "high", "urgent")
