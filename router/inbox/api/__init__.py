"""The agent REST API under ``/api/agent/``.

Token auth (``Authorization: Bearer …``; ``relaydesk agents add NAME`` prints a
token). Errors always have one shape: ``{"error": {"code": ..., "message": ...}}``.
Handlers by subject: ``conversations``, ``contacts`` (and the audit log), ``desk``
(scheduled messages, routing, promises, canned replies); ``common`` holds what
they share.
"""

from __future__ import annotations

from aiohttp import web

from router.inbox.api.contacts import audit_log, contact_attributes, erase_contact, export_contact
from router.inbox.api.conversations import (
    assign,
    attachment,
    claim,
    deliveries,
    events,
    get_conversation,
    list_conversations,
    me,
    merge,
    note,
    reopen,
    reply,
    resend,
    resolve,
    similar,
    split,
    typing,
    update,
)
from router.inbox.api.desk import (
    add_canned,
    cancel_scheduled,
    change_canned,
    change_promises,
    change_routing,
    delete_canned,
    list_canned,
    list_scheduled,
    promises,
    routing,
    schedule,
)

__all__ = ["agent_routes"]


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
