"""The agents' inbox web app under ``/inbox``: server-rendered pages, a little JavaScript.

Sessions are server-side (a random token in an HttpOnly, SameSite=Lax cookie,
Secure behind TLS); every state-changing request carries the session's CSRF
token; a disabled agent's session stops working on the next request. All
customer text reaches the page through Jinja2's autoescaping, and the pages'
Content-Security-Policy allows no inline script, so nothing a customer writes
can run in an agent's browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import WSMsgType, web

from bot import Bot
from knowledge import KnowledgeError, learn
from router.conversations import ConversationStatus, Direction, Priority
from router.events import (
    ConversationChanged,
    DeliveryFailed,
    Event,
    MessageAdded,
    MessageDelivered,
)
from router.handoff import DeskError, NotYours, StaleView
from router.inbox.accounts import Accounts, LoginRefused, TooManyAttempts
from router.inbox.api import DATABASE, DESK, EVENT_BUS
from router.inbox.i18n import LANGUAGES, pick_language, texts
from router.inbox.presence import Presence
from router.storage import Agent, Conversation, Message, QueueFilter

__all__ = ["ACCOUNTS", "INBOX_BOT", "KNOWLEDGE_PATH", "PRESENCE", "RELOAD_BOT", "inbox_routes"]

logger = logging.getLogger(__name__)

ACCOUNTS = web.AppKey("accounts", Accounts)
PRESENCE = web.AppKey("presence", Presence)
INBOX_BOT = web.AppKey("inbox_bot", Bot)
KNOWLEDGE_PATH = web.AppKey("knowledge_path", Path)
# Rebuilds the matcher from the knowledge folder and swaps it in (after "Save as FAQ").
Reloader = Callable[[], Awaitable[None]]
RELOAD_BOT: web.AppKey[Reloader] = web.AppKey("reload_bot")

COOKIE = "relaydesk_session"
_STATIC = Path(__file__).parent / "static"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_TABS = {
    "unassigned": (ConversationStatus.BOT, ConversationStatus.QUEUED),
    "mine": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "open": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "resolved": (ConversationStatus.RESOLVED,),
}
_CHANNELS = ("webchat", "email", "telegram")
_MAX_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class _Viewer:
    agent: Agent
    csrf: str
    token: str
    lang: str


# -- plumbing ---------------------------------------------------------------------


def _render(
    request: web.Request, template: str, viewer: _Viewer | None, status: int = 200, **context: Any
) -> web.Response:
    lang = (
        viewer.lang if viewer else pick_language(None, request.headers.get("Accept-Language", ""))
    )
    html = _TEMPLATES.get_template(template).render(
        t=texts(lang),
        lang=lang,
        agent=viewer.agent if viewer else None,
        csrf=viewer.csrf if viewer else "",
        request_path=request.path_qs,
        **context,
    )
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


async def _viewer(request: web.Request) -> _Viewer | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = await request.app[ACCOUNTS].session(token)
    if found is None:
        return None
    agent, csrf = found
    lang = pick_language(agent.language, request.headers.get("Accept-Language", ""))
    return _Viewer(agent, csrf, token, lang)


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound("/inbox/login?" + urlencode({"next": request.path_qs}))


async def _page_viewer(request: web.Request) -> _Viewer:
    viewer = await _viewer(request)
    if viewer is None:
        raise _login_redirect(request)
    return viewer


async def _form(request: web.Request) -> tuple[_Viewer, dict[str, str]]:
    """The signed-in agent and the posted form, after the CSRF check."""
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized(text="sign in first")
    form = await request.post()
    sent = str(form.get("csrf") or request.headers.get("X-CSRF-Token") or "")
    if not sent or sent != viewer.csrf:
        raise web.HTTPForbidden(text="missing or wrong CSRF token")
    return viewer, {k: str(v) for k, v in form.items() if isinstance(v, str)}


def _admin(viewer: _Viewer) -> None:
    if not viewer.agent.is_admin:
        raise web.HTTPForbidden(text="admins only")


def _conversation_id(request: web.Request) -> int:
    try:
        return int(request.match_info["conversation_id"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc


def _text(form: dict[str, str], key: str = "text") -> str:
    text = form.get(key, "").strip()
    if not text:
        raise web.HTTPBadRequest(text=f"{key} is empty")
    return text[:_MAX_TEXT]


def _back(conversation_id: int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/inbox/c/{conversation_id}")


# -- time and SLA for the views -----------------------------------------------------


def _ago(since: datetime, now: datetime) -> str:
    seconds = max(int((now - since).total_seconds()), 0)
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _sla(c: Conversation, now: datetime) -> dict[str, Any]:
    """Countdown data: green while more than a quarter of the promise is left, amber
    in the last quarter, red once it is past."""
    if c.sla_due_at is None or c.status in (ConversationStatus.RESOLVED, ConversationStatus.BOT):
        return {"due": None}
    start = c.handed_off_at or c.created_at
    total = max((c.sla_due_at - start).total_seconds(), 1.0)
    left = (c.sla_due_at - now).total_seconds()
    sla_class = "sla-late" if left < 0 else ("sla-near" if left < total / 4 else "sla-ok")
    minutes = int(abs(left) // 60)
    due_text = f"{'-' if left < 0 else ''}{minutes // 60}:{minutes % 60:02d}"
    return {
        "due": c.sla_due_at.isoformat(),
        "start": start.isoformat(),
        "sla_class": sla_class,
        "due_text": due_text,
    }


# -- pages --------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    if await _viewer(request) is not None:
        raise web.HTTPFound("/inbox")
    return _render(request, "login.html", None)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    t = texts(pick_language(None, request.headers.get("Accept-Language", "")))
    address = request.remote or "unknown"
    try:
        _, token, _ = await request.app[ACCOUNTS].login(name, password, address=address)
    except TooManyAttempts as exc:
        response = _render(request, "login.html", None, status=429, error=t["too_many"], name=name)
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except LoginRefused:
        return _render(request, "login.html", None, status=401, error=t["wrong_login"], name=name)
    target = request.query.get("next", "/inbox")
    if not target.startswith("/inbox"):
        target = "/inbox"
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    viewer, _ = await _form(request)
    await request.app[ACCOUNTS].logout(viewer.token)
    response = web.HTTPSeeOther("/inbox/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    language = form.get("language", "")
    if language in LANGUAGES:
        await request.app[ACCOUNTS].set_language(viewer.agent.id, language)
    target = form.get("next", "/inbox")
    raise web.HTTPSeeOther(target if target.startswith("/inbox") else "/inbox")


def _filters(request: web.Request) -> dict[str, Any]:
    agent = request.query.get("agent", "")
    return {
        "q": request.query.get("q", "").strip()[:200] or None,
        "channel": request.query.get("channel") or None,
        "language": request.query.get("language") or None,
        "tag": request.query.get("tag", "").strip()[:40] or None,
        "agent": int(agent) if agent.isdigit() else None,
    }


async def _queue(request: web.Request, viewer: _Viewer) -> dict[str, Any]:
    tab = request.query.get("tab", "unassigned")
    if tab not in _TABS:
        tab = "unassigned"
    f = _filters(request)
    now = datetime.now().astimezone()
    async with request.app[DATABASE].read() as repo:
        ids = await repo.search(f["q"]) if f["q"] else None

        def where(name: str) -> QueueFilter:
            return QueueFilter(
                statuses=_TABS[name],
                unassigned=name == "unassigned",
                assignee_id=viewer.agent.id if name == "mine" else f["agent"],
                channel=f["channel"],
                language=f["language"],
                tag=f["tag"],
                conversation_ids=ids,
            )

        conversations = await repo.queue_page(where(tab), limit=200)
        counts = {name: await repo.queue_count(where(name)) for name in _TABS}
        ids_shown = [c.id for c in conversations]
        last = await repo.last_messages(ids_shown)
        asked = await repo.last_messages(ids_shown, direction=Direction.IN)
        contacts = await repo.contacts([c.contact_id for c in conversations])
        agents = await repo.agents()
    names = {a.id: a.name for a in agents}
    rows = []
    for c in conversations:
        message = last.get(c.id)
        question = asked.get(c.id)
        contact = contacts.get(c.contact_id)
        since = message.created_at if message else c.created_at
        rows.append(
            {
                "id": c.id,
                "channel": c.channel,
                "customer": (contact.display_name or contact.email or f"#{c.contact_id}")
                if contact
                else "",
                "first_line": (question.text.strip().splitlines() or [""])[0][:120]
                if question
                else "",
                "language": c.language,
                "since": since.isoformat(),
                "waiting": _ago(since, now),
                "awaiting": message is not None and message.direction is Direction.IN,
                "assignee": names.get(c.assignee_id) if c.assignee_id else None,
                **_sla(c, now),
            }
        )
    return {
        "tab": tab,
        "rows": rows,
        "counts": counts,
        "filters": f,
        "channels": _CHANNELS,
        "agents": [a for a in agents if a.active],
    }


async def queue_page(request: web.Request) -> web.Response:
    viewer = await _page_viewer(request)
    return _render(request, "queue.html", viewer, **await _queue(request, viewer))


async def queue_fragment(request: web.Request) -> web.Response:
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    data = await _queue(request, viewer)
    rows = _TEMPLATES.get_template("_rows.html").render(t=texts(viewer.lang), **data)
    return web.json_response({"rows": rows, "counts": data["counts"]})


async def _conversation(request: web.Request, viewer: _Viewer) -> dict[str, Any]:
    conversation_id = _conversation_id(request)
    try:
        detail = await request.app[DESK].detail(conversation_id)
    except DeskError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    now = datetime.now().astimezone()
    names = dict(detail.agent_names)
    async with request.app[DATABASE].read() as repo:
        agents = [a for a in await repo.agents() if a.active]
    names.update({a.id: a.name for a in agents})
    contact = detail.contact
    contact_name = (
        (contact.display_name or contact.email or "") if contact else ""
    ) or f"#{detail.conversation.contact_id}"
    failed = {d.message_id: d.last_error for d in detail.deliveries if d.status == "dead"}
    messages = []
    previous_customer: Message | None = None
    for m in detail.messages:
        who = {
            "customer": contact_name,
            "bot": "Bot",
            "system": "RelayDesk",
            "agent": names.get(m.author_agent_id or 0, "agent"),
        }[m.author_kind.value]
        messages.append(
            {
                "id": m.id,
                "direction": m.direction.value,
                "author": m.author_kind.value,
                "kind": m.kind,
                "who": who,
                "time": m.created_at.astimezone(now.tzinfo).strftime("%m-%d %H:%M"),
                "text": m.text,
                "subject": m.extras.get("subject") if m.direction is Direction.IN else None,
                "joined": m.extras.get("joined"),
                "flag": m.extras.get("flag"),
                "failed": failed.get(m.id),
                "attachments": [
                    {
                        "name": a.name,
                        "size": a.size,
                        "url": None
                        if a.ref.startswith("refused:")
                        else f"/api/agent/attachments/{a.ref}?name={quote(a.name)}",
                    }
                    for a in m.attachments
                ],
                # An agent's answer to a customer's question can teach the bot.
                "faq_question": previous_customer.text[:300]
                if m.author_kind.value == "agent"
                and m.direction is Direction.OUT
                and previous_customer is not None
                else None,
            }
        )
        if m.direction is Direction.IN:
            previous_customer = m
    c = detail.conversation
    seen = max((m.id for m in detail.messages if m.direction is not Direction.NOTE), default=0)
    return {
        "c": {
            "id": c.id,
            "status": c.status.value,
            "channel": c.channel,
            "language": c.language,
            "subject": c.subject,
            "assignee_id": c.assignee_id,
            "assignee": names.get(c.assignee_id) if c.assignee_id else None,
            "tags": list(c.tags),
            "priority": c.priority.label,
            **_sla(c, now),
        },
        "conversation_id": c.id,
        "messages": messages,
        "seen": seen,
        "handoffs": [
            {
                "reason": h.reason,
                "language": h.language,
                "priority": h.priority.label,
                "candidates": [
                    {"question": str(x.get("question", "")), "score": float(x.get("score", 0))}
                    for x in h.candidates
                ],
            }
            for h in detail.handoffs
        ],
        "contact": contact,
        "contact_name": contact_name,
        "identities": detail.identities,
        "others": detail.other_conversations,
        "agents": agents,
    }


async def conversation_page(request: web.Request) -> web.Response:
    viewer = await _page_viewer(request)
    data = await _conversation(request, viewer)
    return _render(request, "conversation.html", viewer, **data)


async def conversation_fragment(request: web.Request) -> web.Response:
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    data = await _conversation(request, viewer)
    t = texts(viewer.lang)
    return web.json_response(
        {
            "messages": _TEMPLATES.get_template("_messages.html").render(
                t=t, csrf=viewer.csrf, **data
            ),
            "head": _TEMPLATES.get_template("_head.html").render(t=t, **data),
            "status": data["c"]["status"],
            "seen": data["seen"],
        }
    )


# -- actions ------------------------------------------------------------------------


async def _rerender(
    request: web.Request, viewer: _Viewer, status: int, **context: Any
) -> web.Response:
    data = await _conversation(request, viewer)
    return _render(request, "conversation.html", viewer, status=status, **data, **context)


async def claim(request: web.Request) -> web.Response:
    viewer, _ = await _form(request)
    conversation_id = _conversation_id(request)
    try:
        await request.app[DESK].claim(conversation_id, viewer.agent)
    except DeskError as exc:
        return await _rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise _back(conversation_id)


async def reply(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    conversation_id = _conversation_id(request)
    text = _text(form)
    seen = form.get("seen", "")
    t = texts(viewer.lang)
    try:
        await request.app[DESK].reply(
            conversation_id,
            viewer.agent,
            text,
            seen_message_id=int(seen) if seen.isdigit() else None,
        )
    except StaleView:
        return await _rerender(
            request, viewer, 409, notice=t["stale"], notice_kind="stale", draft=text
        )
    except NotYours:
        return await _rerender(
            request, viewer, 409, notice=t["not_yours"], notice_kind="error", draft=text
        )
    except DeskError as exc:
        return await _rerender(
            request, viewer, 409, notice=str(exc), notice_kind="error", draft=text
        )
    raise _back(conversation_id)


async def note(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    conversation_id = _conversation_id(request)
    try:
        await request.app[DESK].note(conversation_id, viewer.agent, _text(form))
    except DeskError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    raise _back(conversation_id)


async def resolve(request: web.Request) -> web.Response:
    viewer, _ = await _form(request)
    conversation_id = _conversation_id(request)
    try:
        await request.app[DESK].resolve(conversation_id, viewer.agent)
    except DeskError as exc:
        return await _rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise _back(conversation_id)


async def reopen(request: web.Request) -> web.Response:
    viewer, _ = await _form(request)
    conversation_id = _conversation_id(request)
    await request.app[DESK].reopen(conversation_id, viewer.agent, assignee=viewer.agent)
    raise _back(conversation_id)


async def assign(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    conversation_id = _conversation_id(request)
    target: Agent | None = None
    if form.get("agent_id", "").isdigit():
        async with request.app[DATABASE].read() as repo:
            target = await repo.agent(int(form["agent_id"]))
        if target is None:
            raise web.HTTPBadRequest(text="no such agent")
    try:
        await request.app[DESK].assign(conversation_id, viewer.agent, target)
    except DeskError as exc:
        return await _rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise _back(conversation_id)


async def update(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    conversation_id = _conversation_id(request)
    priority = form.get("priority")
    try:
        await request.app[DESK].update(
            conversation_id,
            viewer.agent,
            tags=form["tags"].replace("，", ",").split(",") if "tags" in form else None,
            priority=Priority.parse(priority)
            if priority in ("low", "normal", "high", "urgent")
            else None,
        )
    except DeskError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    raise _back(conversation_id)


async def save_faq(request: web.Request) -> web.Response:
    """An agent's reply becomes (or extends) a knowledge-base entry; the bot reloads."""
    viewer, form = await _form(request)
    conversation_id = _conversation_id(request)
    question = _text(form, "question")
    detail = await request.app[DESK].detail(conversation_id)
    answer = next((m for m in detail.messages if str(m.id) == form.get("message_id", "")), None)
    if answer is None or answer.author_kind.value != "agent":
        raise web.HTTPBadRequest(text="pick an agent's reply")
    bot = request.app[INBOX_BOT]
    # The same answer text as an entry's: a new phrasing of that entry.
    same = next(
        (e for e in bot.matcher.entries if answer.text.strip() in dict(e.answers).values()),
        None,
    )
    try:
        entry_id = await asyncio.to_thread(
            learn,
            request.app[KNOWLEDGE_PATH],
            question=question,
            answer=answer.text,
            extends=same.id if same else None,
        )
        await request.app[RELOAD_BOT]()
    except KnowledgeError as exc:
        return await _rerender(request, viewer, 400, notice=str(exc), notice_kind="error")
    logger.info("agent %s saved a FAQ phrasing into %s", viewer.agent.name, entry_id)
    return await _rerender(
        request, viewer, 200, notice=texts(viewer.lang)["faq_saved"], notice_kind="ok"
    )


async def knowledge_search(request: web.Request) -> web.Response:
    """Canned answers: knowledge-base entries matching what the agent types."""
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    query = request.query.get("q", "").strip()[:200]
    bot = request.app[INBOX_BOT]
    results = []
    if query:
        for candidate in bot.matcher.match(query, limit=5):
            entry = bot.matcher.entry(candidate.entry_id)
            if entry is None:
                continue
            language = request.query.get("language") or viewer.lang
            results.append(
                {
                    "id": entry.id,
                    "title": entry.title_for(language),
                    "answer": entry.answer_for(language),
                    "score": round(candidate.score, 1),
                }
            )
    return web.json_response({"results": results})


# -- admin --------------------------------------------------------------------------


async def admin_page(request: web.Request) -> web.Response:
    viewer = await _page_viewer(request)
    _admin(viewer)
    async with request.app[DATABASE].read() as repo:
        agents = await repo.agents()
    return _render(request, "admin.html", viewer, agents=agents, notice=request.query.get("notice"))


async def admin_add(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    _admin(viewer)
    try:
        await request.app[ACCOUNTS].create(
            _text(form, "name")[:100], form.get("password", ""), role=form.get("role", "agent")
        )
    except ValueError as exc:
        raise web.HTTPSeeOther("/inbox/admin?" + urlencode({"notice": str(exc)})) from exc
    raise web.HTTPSeeOther("/inbox/admin")


async def admin_change(request: web.Request) -> web.Response:
    viewer, form = await _form(request)
    _admin(viewer)
    try:
        agent_id = int(request.match_info["agent_id"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    action = request.match_info["action"]
    accounts = request.app[ACCOUNTS]
    try:
        if action == "disable":
            await accounts.set_active(agent_id, False)
        elif action == "enable":
            await accounts.set_active(agent_id, True)
        elif action == "password":
            await accounts.set_password(agent_id, form.get("password", ""))
        else:
            raise web.HTTPNotFound()
    except ValueError as exc:
        raise web.HTTPSeeOther("/inbox/admin?" + urlencode({"notice": str(exc)})) from exc
    raise web.HTTPSeeOther("/inbox/admin")


# -- live updates -------------------------------------------------------------------


def _frame(event: Event) -> dict[str, Any] | None:
    if isinstance(event, MessageAdded):
        return {
            "type": "message_added",
            "conversation_id": event.conversation_id,
            "author": event.author_kind,
            "direction": event.direction,
        }
    if isinstance(event, ConversationChanged):
        return {
            "type": "conversation_changed",
            "conversation_id": event.conversation_id,
            "status": event.status,
        }
    if isinstance(event, DeliveryFailed | MessageDelivered):
        return {"type": "delivery", "conversation_id": event.conversation_id}
    return None  # typing is for customers; knowledge reloads are for operators


async def live(request: web.Request) -> web.WebSocketResponse:
    """The inbox's websocket: store events and presence out; viewing/typing in."""
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def send(frame: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            outgoing.put_nowait(frame)

    presence = request.app[PRESENCE]
    handle = presence.connect(viewer.agent.id, viewer.agent.name, send)

    async def pump() -> None:
        async with request.app[EVENT_BUS].subscribe() as events:
            getter = asyncio.ensure_future(events.get())
            waiter = asyncio.ensure_future(outgoing.get())
            try:
                while True:
                    done, _ = await asyncio.wait(
                        {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        frame = _frame(getter.result())
                        getter = asyncio.ensure_future(events.get())
                        if frame is not None:
                            await ws.send_json(frame)
                    if waiter in done:
                        await ws.send_json(waiter.result())
                        waiter = asyncio.ensure_future(outgoing.get())
            finally:
                getter.cancel()
                waiter.cancel()

    task = asyncio.ensure_future(pump())
    try:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            if frame.get("type") == "viewing":
                conversation = frame.get("conversation_id")
                presence.view(handle, conversation if isinstance(conversation, int) else None)
                if isinstance(conversation, int):
                    send(presence.snapshot(conversation))
            elif frame.get("type") == "typing":
                presence.typing(handle)
    finally:
        presence.disconnect(handle)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
    return ws


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
        web.post(one + "/claim", claim),
        web.post(one + "/reply", reply),
        web.post(one + "/note", note),
        web.post(one + "/resolve", resolve),
        web.post(one + "/reopen", reopen),
        web.post(one + "/assign", assign),
        web.post(one + "/update", update),
        web.post(one + "/faq", save_faq),
        web.get("/inbox/kb", knowledge_search),
        web.get("/inbox/admin", admin_page),
        web.post("/inbox/admin/agents", admin_add),
        web.post("/inbox/admin/agents/{agent_id}/{action}", admin_change),
        web.get("/inbox/ws", live),
        web.static("/inbox/static", _STATIC),
    ]
