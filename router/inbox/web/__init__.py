"""The agents' inbox web app under ``/inbox``: pages and the actions agents take.

Server-rendered pages (see ``session`` for sessions, CSRF and escaping) with a
little JavaScript for live updates (``live``).

Pages by subject: ``pages`` (sign-in, queue, conversation), ``actions`` (what an
agent does on a conversation), ``knowledge`` (FAQ, search, similar cases, files),
``admin`` (saved replies, agents, settings, audit).
"""

from __future__ import annotations

from aiohttp import web

from router.inbox.live import live
from router.inbox.session import STATIC
from router.inbox.web.actions import (
    assign,
    cancel_scheduled,
    claim,
    merge,
    note,
    reopen,
    reply,
    resend,
    resolve,
    schedule,
    split,
    update,
)
from router.inbox.web.admin import (
    admin_add,
    admin_audit_page,
    admin_change,
    admin_page,
    admin_settings_page,
    admin_settings_save,
    canned_add,
    canned_delete,
    canned_page,
)
from router.inbox.web.knowledge import (
    attachment,
    knowledge_search,
    next_conversation,
    save_faq,
    similar_cases,
)
from router.inbox.web.pages import (
    conversation_fragment,
    conversation_page,
    login,
    login_page,
    logout,
    queue_fragment,
    queue_page,
    set_language,
)

__all__ = ["inbox_routes"]


async def inbox_root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/inbox")


def inbox_routes() -> list[web.AbstractRouteDef]:
    one = "/inbox/c/{conversation_id}"
    return [
        web.get("/inbox", queue_page),
        web.get("/inbox/", inbox_root),
        web.get("/inbox/queue", queue_fragment),
        web.get("/inbox/login", login_page),
        web.post("/inbox/login", login),
        web.post("/inbox/logout", logout),
        web.post("/inbox/language", set_language),
        web.get(one, conversation_page),
        web.get(one + "/fragment", conversation_fragment),
        web.get(one + "/similar", similar_cases),
        web.post(one + "/claim", claim),
        web.post(one + "/reply", reply),
        web.post(one + "/note", note),
        web.post(one + "/resolve", resolve),
        web.post(one + "/reopen", reopen),
        web.post(one + "/assign", assign),
        web.post(one + "/update", update),
        web.post(one + "/faq", save_faq),
        web.post(one + "/split", split),
        web.post(one + "/merge", merge),
        web.post(one + "/resend", resend),
        web.post(one + "/schedule", schedule),
        web.post(one + "/scheduled/cancel", cancel_scheduled),
        web.get("/inbox/kb", knowledge_search),
        web.get("/inbox/canned", canned_page),
        web.get("/inbox/next", next_conversation),
        web.get("/inbox/attachments/{ref:.+}", attachment),
        web.post("/inbox/canned", canned_add),
        web.post("/inbox/canned/{reply_id}/delete", canned_delete),
        web.get("/inbox/admin", admin_page),
        web.post("/inbox/admin/agents", admin_add),
        web.get("/inbox/admin/sla", admin_settings_page),
        web.get("/inbox/admin/routing", admin_settings_page),
        web.get("/inbox/admin/audit", admin_audit_page),
        web.post("/inbox/admin/sla", admin_settings_save),
        web.post("/inbox/admin/routing", admin_settings_save),
        web.post("/inbox/admin/agents/{agent_id}/{action}", admin_change),
        web.get("/inbox/ws", live),
        web.static("/inbox/static", STATIC),
    ]
