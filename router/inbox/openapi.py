"""The OpenAPI 3 document of the agent REST API, served at ``/api/openapi.json``.

Kept in step with ``agent_routes()`` by a test: every route is documented and
every documented path is routed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.reporting.tables import REPORT_TABLES

__all__ = ["openapi_document", "openapi_route"]

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_CONTACT_ID = {"name": "contact_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_MESSAGE_ID = {
    "name": "message_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
_TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": 20000,
    "pattern": "\\S",
    "description": "not blank",
}


def _json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """A request body of JSON matching ``schema``."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_NOTE_BODY = _json_body({"type": "object", "required": ["text"], "properties": {"text": _TEXT}})
_TEXT_BODY = _json_body(
    {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": _TEXT,
            "seen_message_id": {
                "type": "integer",
                "nullable": True,
                "description": "reply: refused (409 stale) if any message is newer",
            },
            "wait_for_customer": {
                "type": "boolean",
                "nullable": True,
                "description": "reply: the resolution clock stops until the customer "
                "writes (default: when the reply ends in a question mark)",
            },
            "macro_id": {
                "type": "integer",
                "minimum": 1,
                "maximum": 2**63 - 1,
                "nullable": True,
                "description": "a saved reply whose tags, priority and resolution "
                "apply with this reply",
            },
        },
    }
)


# A reply with files: the same fields as form fields, and one to five ``files`` (in all
# at most inbox.max_attachment_mb); ``text`` may then be empty.
_REPLY_BODY = {
    "required": True,
    "content": {
        **_TEXT_BODY["content"],
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "additionalProperties": False,
                "properties": {
                    "text": {"type": "string", "maxLength": 20000},
                    "seen_message_id": {"type": "integer"},
                    "wait_for_customer": {"type": "boolean"},
                    "macro_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                    "files": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 5,
                        "items": {"type": "string", "format": "binary", "minLength": 1},
                    },
                },
            }
        },
    },
}


def _agent_body(*, required: bool) -> dict[str, Any]:
    """``{"agent_id": n | null}``: an agent, or nobody (the queue); the key itself is
    required when the body is."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"agent_id": {"type": "integer", "minimum": 1, "nullable": True}},
    }
    if required:
        schema["required"] = ["agent_id"]
    return _json_body(schema, required=required)


_CANNED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "text"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"},
        "text": _TEXT,
        "scope": {
            "type": "string",
            "pattern": "^(mine|everyone|team:[A-Za-z0-9_.-]{1,60})$",
            "description": "mine (the default), everyone (admins) or team:<key>; "
            "a change keeps the reply's scope",
        },
        "tags": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "\\S"},
        },
        "priority": {
            "type": "string",
            # null stands in the list too: OpenAPI 3.0's nullable does not reach an enum.
            "enum": ["low", "normal", "high", "urgent", None],
            "nullable": True,
        },
        "resolve": {"type": "boolean"},
    },
}
_CANNED_ID = {"name": "reply_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _op(
    summary: str,
    *,
    ok: str = "200",
    params: list[Any] | None = None,
    errors: tuple[str, ...] = (),
    **extra: Any,
) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "400": _ERROR,
            "401": _ERROR,
            "404": _ERROR,
            "409": _ERROR,
            **dict.fromkeys(errors, _ERROR),
        },
    }
    if params:
        operation["parameters"] = params
    operation.update(extra)
    return operation


_REPORT_FILTERS = [
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "channel", "in": "query", "schema": {"type": "string"}},
    {"name": "agent", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "language", "in": "query", "schema": {"type": "string"}},
    {"name": "tag", "in": "query", "schema": {"type": "string"}},
    {"name": "team", "in": "query", "schema": {"type": "string"}},
]


def _with_forbidden(operation: Any) -> Any:
    operation["responses"]["403"] = _ERROR
    return operation


def _similar_operation() -> Any:
    operation = _op(
        "Up to three resolved conversations like this one (compared by meaning), each "
        "with the reply that resolved it; none rated 1 or 2 of 5, none of an erased "
        "contact, only those you may see",
        params=[_ID],
    )
    nullable_integer = {"type": "integer", "nullable": True}
    case = {
        "type": "object",
        "required": ["conversation_id", "question", "reply", "suggestion", "similarity"],
        "properties": {
            "conversation_id": {"type": "integer"},
            "question": {"type": "string", "description": "what that customer asked"},
            "reply": {"type": "string", "description": "the reply that resolved it"},
            "suggestion": {
                "type": "string",
                "description": "the reply for this customer: no greeting, in their script",
            },
            "similarity": {"type": "number", "minimum": -1, "maximum": 1},
            "resolved_at": {"type": "string", "format": "date-time"},
            "csat_score": nullable_integer,
        },
    }
    schema = {
        "type": "object",
        "required": ["question", "similar"],
        "properties": {
            "question": {"type": "string", "description": "this customer's question"},
            "reads_meaning": {
                "type": "boolean",
                "nullable": True,
                "description": "false: compared by words (the meaning model could not load)",
            },
            "similar": {"type": "array", "maxItems": 3, "items": case},
        },
    }
    operation["responses"]["200"]["content"]["application/json"]["schema"] = schema
    return operation


def openapi_document() -> dict[str, Any]:
    base = "/api/agent"
    one = base + "/conversations/{conversation_id}"
    paths: dict[str, Any] = {
        base + "/me": {"get": _op("The agent the token belongs to")},
        base + "/conversations": {
            "get": _op(
                "Conversations in queue order (SLA due time, priority, age)",
                params=[
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["open", "queued", "assigned", "bot", "resolved", "all"],
                        },
                    },
                    {"name": "mine", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "team",
                        "in": "query",
                        "description": "a team's key, or mine (the caller's teams)",
                        "schema": {"type": "string", "enum": ["mine"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
            )
        },
        one: {
            "get": _op("One conversation with transcript, handoffs and contact", params=[_ID]),
            "patch": _op(
                "Set the conversation's tags and/or priority",
                params=[_ID],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "minProperties": 1,
                        "properties": {
                            "tags": {
                                "type": "array",
                                "maxItems": 50,
                                "items": {"type": "string", "maxLength": 200},
                            },
                            "priority": {
                                "type": "string",
                                "enum": ["low", "normal", "high", "urgent"],
                            },
                        },
                    }
                ),
            ),
        },
        base + "/audit": {
            "get": _with_forbidden(
                _op(
                    "The audit log: who did what, when, from where (admins)",
                    params=[
                        {"name": "action", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "agent",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                        {
                            "name": "before",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                    ],
                )
            )
        },
        base + "/contacts/{contact_id}/export": {
            "get": _with_forbidden(
                _op("Everything held of a contact, as JSON (admins)", params=[_CONTACT_ID])
            )
        },
        base + "/contacts/{contact_id}/attributes": {
            "put": _op(
                "Replace what the shop says of a contact (e.g. vip: true), for routing rules",
                params=[_CONTACT_ID],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "maxProperties": 30,
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "string", "maxLength": 200},
                                {"type": "number"},
                                {"type": "boolean"},
                            ]
                        },
                    }
                ),
            )
        },
        base + "/contacts/{contact_id}/erase": {
            "post": _with_forbidden(
                _op(
                    "Erase a contact's messages, files, names and addresses; counts stay (admins)",
                    params=[_CONTACT_ID],
                )
            )
        },
        one + "/assign": {
            "post": _op(
                "Give the conversation to an agent, or back to the queue (agent_id null); "
                "with team, move it to that team's queue (null: everyone's) first",
                params=[_ID],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": False,
                        "properties": {
                            "agent_id": {"type": "integer", "minimum": 1, "nullable": True},
                            "team": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 60,
                                "nullable": True,
                            },
                        },
                    }
                ),
            )
        },
        one + "/reopen": {
            "post": _op(
                "Open a resolved conversation again, for an agent (default: you) or the "
                "queue (agent_id null)",
                params=[_ID],
                requestBody=_agent_body(required=False),
            )
        },
        one + "/claim": {
            "post": _op("Take the conversation (exactly one of two wins)", params=[_ID])
        },
        one + "/reply": {
            "post": _op(
                "Reply through the customer's channel, with files if any",
                ok="202",
                params=[_ID],
                requestBody=_REPLY_BODY,
                # 403: agents may not attach files here; 413: the files are too large.
                errors=("403", "413"),
            )
        },
        one + "/notes": {
            "post": _op("An internal note", ok="201", params=[_ID], requestBody=_NOTE_BODY)
        },
        one + "/resolve": {"post": _op("Close the conversation", params=[_ID])},
        one + "/typing": {
            "post": _op("Show the customer that a person types", ok="202", params=[_ID])
        },
        one + "/messages/{message_id}/split": {
            "post": _op(
                "Move a wrongly threaded customer message into a conversation of its own",
                ok="201",
                params=[_ID, _MESSAGE_ID],
            )
        },
        one + "/messages/{message_id}/merge": {
            "post": _op(
                "Move a customer message into the conversation it claimed to continue "
                "(its sender was not on it, see extras.claimed_conversation)",
                params=[_ID, _MESSAGE_ID],
            )
        },
        one + "/deliveries/{delivery_id}/resend": {
            "post": _op(
                "Send a dead reply again (failed_deliveries lists them)",
                params=[
                    _ID,
                    {
                        "name": "delivery_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
            )
        },
        one + "/similar": {"get": _similar_operation()},
        one + "/scheduled": {
            "get": _op("Follow-ups and reminders of the conversation", params=[_ID]),
            "post": _op(
                "Schedule a follow-up to the customer (sent in business hours) or a "
                "reminder to yourself",
                ok="201",
                params=[_ID],
                requestBody=_json_body(
                    {
                        "type": "object",
                        "required": ["kind"],
                        "oneOf": [
                            {"required": ["in_minutes"], "not": {"required": ["due_at"]}},
                            {"required": ["due_at"], "not": {"required": ["in_minutes"]}},
                        ],
                        "properties": {
                            "kind": {"type": "string", "enum": ["follow_up", "reminder"]},
                            "in_minutes": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 527040,
                            },
                            "due_at": {
                                "type": "string",
                                "format": "date-time",
                                "description": "a time already past is due at once",
                            },
                            "text": {"type": "string", "maxLength": 2000},
                        },
                    }
                ),
            ),
        },
        one + "/scheduled/{item_id}/cancel": {
            "post": _op(
                "Cancel a follow-up or reminder that has not happened yet",
                params=[
                    _ID,
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
            )
        },
        base + "/sla": {
            "get": _op("Business calendars and SLA policies, and whether each calendar is open"),
            "put": _with_forbidden(
                _op(
                    "Admins: replace the sla section (as in config.yaml, without check_seconds "
                    "and holiday_files) on every node; 400 names each wrong key",
                    requestBody=_json_body({"type": "object"}),
                )
            ),
        },
        base + "/canned": {
            "get": _op(
                "Saved replies and macros you may use (yours, your teams', everyone's), "
                "matching q, filled for conversation_id",
                params=[
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "conversation_id",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
            ),
            "post": _with_forbidden(
                _op(
                    "Save a reply or macro: yours, a team's (its members, admins) or "
                    "everyone's (admins)",
                    ok="201",
                    requestBody=_json_body(_CANNED_SCHEMA),
                )
            ),
        },
        base + "/canned/{reply_id}": {
            "put": _with_forbidden(
                _op(
                    "Change a saved reply's title, text and actions",
                    params=[_CANNED_ID],
                    requestBody=_json_body(_CANNED_SCHEMA),
                )
            ),
            "delete": _with_forbidden(_op("Delete a saved reply", params=[_CANNED_ID])),
        },
        base + "/knowledge/synonyms": {
            "get": _with_forbidden(
                _op(
                    "Admins: words suggested by phrasings saved to existing entries "
                    "(variant, canonical, entry, example), awaiting a decision"
                )
            ),
            "post": _with_forbidden(
                _op(
                    "Admins: accept a suggested word (the bot reads it as its canonical word "
                    "at once) or dismiss it for good; 404 if no such suggestion is pending",
                    requestBody=_json_body(
                        {
                            "type": "object",
                            "required": ["variant", "action"],
                            "properties": {
                                "variant": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": 100,
                                },
                                "action": {
                                    "type": "string",
                                    "enum": ["accept", "dismiss"],
                                },
                            },
                        }
                    ),
                )
            ),
        },
        base + "/routing": {
            "get": _op("Teams (members, capacity) and routing rules in force, and your teams"),
            "put": _with_forbidden(
                _op(
                    "Admins: replace the routing section (teams and rules, as in config.yaml) "
                    "on every node; 400 names each wrong key",
                    requestBody=_json_body({"type": "object"}),
                )
            ),
        },
        base + "/reports": {
            "get": _with_forbidden(
                _op(
                    "Leads and admins: the reports (volume, the bot, people, satisfaction) "
                    "with each figure's definition",
                    params=_REPORT_FILTERS,
                )
            )
        },
        base + "/reports/conversations": {
            "get": _with_forbidden(
                _op(
                    "The conversations behind one figure (figure: channel, heatmap, "
                    "bot_outcome, handoff_reason, reopened, sla_missed, csat_score)",
                    params=[
                        {"name": "figure", "in": "query", "schema": {"type": "string"}},
                        {"name": "key", "in": "query", "schema": {"type": "string"}},
                        *_REPORT_FILTERS,
                    ],
                )
            )
        },
        base + "/reports/gaps": {
            "get": _with_forbidden(
                _op(
                    "Leads and admins: questions the bot could not answer, grouped into "
                    "clusters (examples, the closest entry, agents' answers), biggest first",
                    params=_REPORT_FILTERS,
                )
            )
        },
        base + "/reports/{table}.csv": {
            "get": {
                "summary": "One table of the reports as CSV",
                "parameters": [
                    {
                        "name": "table",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(REPORT_TABLES)},
                    },
                    *_REPORT_FILTERS,
                ],
                "responses": {
                    "200": {
                        "description": "the table",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "400": _ERROR,
                    "401": _ERROR,
                    "403": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        base + "/events": {
            "get": _op(
                "A websocket of live events (one JSON object each)",
                ok="101",
                params=[
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "schema": schema,
                    }
                    for name, schema in (
                        ("Upgrade", {"type": "string", "enum": ["websocket"]}),
                        ("Connection", {"type": "string", "enum": ["Upgrade"]}),
                        ("Sec-WebSocket-Version", {"type": "string", "enum": ["13"]}),
                        (
                            "Sec-WebSocket-Key",
                            {"type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$"},
                        ),
                    )
                ],
            )
        },
        base + "/deliveries": {
            "get": _op(
                "Outbox rows by status",
                params=[
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["pending", "sent", "dead"]},
                    }
                ],
            )
        },
        base + "/attachments/{ref}": {
            "get": {
                "summary": "A file a customer sent, always as a download",
                "parameters": [
                    {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "name", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "400": _ERROR,
                    "401": _ERROR,
                    "404": _ERROR,
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "RelayDesk agent API",
            "version": "1",
            "description": "Token auth: `Authorization: Bearer <token>` (`relaydesk agents add`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "An error, always in this shape",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "properties": {
                                            "code": {"type": "string"},
                                            "message": {"type": "string"},
                                        },
                                    }
                                },
                            }
                        }
                    },
                }
            },
        },
    }


async def _serve(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def openapi_route() -> web.RouteDef:
    return web.get("/api/openapi.json", _serve)
