"""The agents' inbox web app under ``/inbox``: pages and the actions agents take.

Server-rendered pages (see ``session`` for sessions, CSRF and escaping) with a
little JavaScript for live updates (``live``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from knowledge import KnowledgeError, learn
from router.conversations import ConversationStatus, Priority
from router.delivery.files import Upload, UploadRefused, download, read_form_with_files
from router.desk.actions import HumanDesk
from router.desk.canned import CannedDraft
from router.errors import DeskError, NotYours, StaleView, page_error
from router.inbox import presenters
from router.inbox.accounts import LoginRefused, TooManyAttempts
from router.inbox.i18n import LANGUAGES, pick_language, texts
from router.inbox.keys import ACCOUNTS
from router.inbox.live import live
from router.inbox.reports_web import audit_knowledge, suggest_from, suggested_notice
from router.inbox.session import (
    COOKIE,
    MAX_TEXT,
    STATIC,
    TEMPLATES,
    Viewer,
    back_to,
    check_csrf,
    conversation_id_of,
    current_viewer,
    form_text,
    page_viewer,
    posted_form,
    posting_viewer,
    render,
    require_admin,
    require_same_origin,
)
from router.inbox.views import conversation_view, queue_view
from router.keys import (
    AFTERCARE,
    ASSIST,
    BOT,
    CANNED,
    CLIENT_ADDRESSES,
    CLOCK,
    DATABASE,
    DESK,
    FILES,
    KNOWLEDGE_PATH,
    RELOAD_BOT,
    ROUTING_SETTINGS,
    SLA_SETTINGS,
    TIMEZONE,
)
from router.settings.editable import EditableSection, SettingsRefused
from router.storage import Agent, QueueFilter

__all__ = ["inbox_routes"]

logger = logging.getLogger(__name__)

# -- pages --------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    if await current_viewer(request) is not None:
        raise web.HTTPFound("/inbox")
    return render(request, "login.html", None)


async def login(request: web.Request) -> web.Response:
    # Login CSRF: a page elsewhere must not sign the agent's browser in as someone else.
    require_same_origin(request)
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    t = texts(pick_language(None, request.headers.get("Accept-Language", "")))
    address = request.app[CLIENT_ADDRESSES].of(request)
    try:
        _, token, _ = await request.app[ACCOUNTS].login(name, password, address=address)
    except TooManyAttempts as exc:
        response = render(request, "login.html", None, status=429, error=t["too_many"], name=name)
        response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return response
    except LoginRefused:
        return render(request, "login.html", None, status=401, error=t["wrong_login"], name=name)
    target = request.query.get("next", "/inbox")
    if not target.startswith("/inbox"):
        target = "/inbox"
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=request.secure or request.app[ACCOUNTS].secure_cookies,
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    viewer, _ = await posted_form(request)
    await request.app[ACCOUNTS].logout(viewer.token)
    response = web.HTTPSeeOther("/inbox/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def set_language(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    language = form.get("language", "")
    if language in LANGUAGES:
        await request.app[ACCOUNTS].set_language(viewer.agent.id, language)
    target = form.get("next", "/inbox")
    raise web.HTTPSeeOther(target if target.startswith("/inbox") else "/inbox")


async def queue_page(request: web.Request) -> web.Response:
    viewer = await page_viewer(request)
    return render(request, "queue.html", viewer, **await queue_view(request, viewer))


async def queue_fragment(request: web.Request) -> web.Response:
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    data = await queue_view(request, viewer)
    rows = TEMPLATES.get_template("_rows.html").render(t=texts(viewer.lang), **data)
    return web.json_response({"rows": rows, "counts": data["counts"]})


async def conversation_page(request: web.Request) -> web.Response:
    viewer = await page_viewer(request)
    data = await conversation_view(request, viewer)
    return render(request, "conversation.html", viewer, **data, **_composer(request))


def _composer(request: web.Request) -> dict[str, Any]:
    """What the reply box needs beyond the conversation: how much an agent may attach."""
    limit = request.app[FILES].max_bytes
    return {"attach_bytes": limit, "attach_mb": f"{limit / 1024 / 1024:.3g}"}


async def conversation_fragment(request: web.Request) -> web.Response:
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    data = await conversation_view(request, viewer)
    t = texts(viewer.lang)
    return web.json_response(
        {
            "messages": TEMPLATES.get_template("_messages.html").render(
                t=t, csrf=viewer.csrf, **data
            ),
            "head": TEMPLATES.get_template("_head.html").render(t=t, **data),
            "status": data["c"]["status"],
            "seen": data["seen"],
        }
    )


# -- actions ------------------------------------------------------------------------


async def _rerender(
    request: web.Request, viewer: Viewer, status: int, **context: Any
) -> web.Response:
    data = await conversation_view(request, viewer)
    return render(
        request,
        "conversation.html",
        viewer,
        status=status,
        **data,
        **_composer(request),
        **context,
    )


async def _act(
    request: web.Request, action: Callable[[HumanDesk, int, Agent], Awaitable[object]]
) -> web.Response:
    """Do ``action`` and go back to the conversation, or show it with why not."""
    viewer, _ = await posted_form(request)
    conversation_id = conversation_id_of(request)
    try:
        await action(request.app[DESK], conversation_id, viewer.agent)
    except DeskError as exc:
        return await _rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise back_to(conversation_id)


async def claim(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.claim(c, agent))


async def reply(request: web.Request) -> web.Response:
    """The reply box: text, and files when the agent attached any (multipart)."""
    files = request.app[FILES]
    uploads: list[Upload] = []
    if request.content_type.startswith("multipart/"):
        viewer = await posting_viewer(request)
        try:
            form, uploads = await read_form_with_files(
                request, max_bytes=files.max_bytes, max_files=files.max_files
            )
        except UploadRefused as exc:
            return await _rerender(
                request, viewer, exc.status, notice=str(exc), notice_kind="error", draft=""
            )
        check_csrf(request, viewer, form)
        text = form.get("text", "").strip()[:MAX_TEXT]
        if not text and not uploads:
            raise web.HTTPBadRequest(text="text is empty")
    else:
        viewer, form = await posted_form(request)
        text = form_text(form)
    conversation_id = conversation_id_of(request)
    seen = form.get("seen", "")
    macro_id = form.get("macro", "")
    t = texts(viewer.lang)
    kept = await files.keep(conversation_id, uploads)
    try:
        macro = (
            await request.app[CANNED].get(viewer.agent, int(macro_id))
            if macro_id.isascii() and macro_id.isdigit() and len(macro_id) <= 18
            else None
        )
        await request.app[DESK].reply(
            conversation_id,
            viewer.agent,
            text,
            seen_message_id=int(seen) if seen.isdigit() else None,
            # Ticked: waiting on the customer; unticked: the reply's own question mark says.
            wait_for_customer=True if form.get("wait") == "1" else None,
            macro=macro,
            attachments=kept,
        )
    except DeskError as exc:
        files.forget(kept)
        notice, kind = (
            (t["stale"], "stale")
            if isinstance(exc, StaleView)
            else (t["not_yours"] if isinstance(exc, NotYours) else str(exc), "error")
        )
        return await _rerender(request, viewer, 409, notice=notice, notice_kind=kind, draft=text)
    except BaseException:
        files.forget(kept)
        raise
    raise back_to(conversation_id)


async def note(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    try:
        await request.app[DESK].note(conversation_id, viewer.agent, form_text(form))
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(conversation_id)


async def resolve(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.resolve(c, agent))


async def reopen(request: web.Request) -> web.Response:
    return await _act(request, lambda desk, c, agent: desk.reopen(c, agent, assignee=agent))


async def assign(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    target: Agent | None = None
    if form.get("agent_id", "").isdigit():
        async with request.app[DATABASE].read() as repo:
            target = await repo.agent(int(form["agent_id"]))
        if target is None:
            raise web.HTTPBadRequest(text="no such agent")
    desk = request.app[DESK]
    try:
        if "team" in form and form["team"] != form.get("current_team", ""):
            await desk.transfer(conversation_id, viewer.agent, form["team"] or None, target)
        else:
            await desk.assign(conversation_id, viewer.agent, target)
    except DeskError as exc:
        return await _rerender(request, viewer, 409, notice=str(exc), notice_kind="error")
    raise back_to(conversation_id)


async def update(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
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
        raise page_error(exc) from exc
    raise back_to(conversation_id)


_LATER_MINUTES = {"30", "60", "120", "1440", "4320"}


async def schedule(request: web.Request) -> web.Response:
    """A reminder for the agent, or a follow-up to the customer, in a while."""
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    kind, minutes = form.get("kind", ""), form.get("minutes", "")
    if kind not in ("reminder", "follow_up") or minutes not in _LATER_MINUTES:
        raise web.HTTPBadRequest(text="choose what and when")
    text = form.get("text", "").strip()[:2000] or None
    try:
        await request.app[DESK].schedule(
            conversation_id,
            viewer.agent,
            kind=kind,
            due_at=request.app[CLOCK]() + timedelta(minutes=int(minutes)),
            text=text,
        )
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(conversation_id)


async def cancel_scheduled(request: web.Request) -> web.Response:
    async def act(desk: HumanDesk, conversation: int, item: int, agent: Agent) -> int:
        await desk.cancel_scheduled(conversation, item, agent)
        return conversation

    return await _on_item(request, "item_id", act)


async def _on_item(
    request: web.Request,
    field: str,
    action: Callable[[HumanDesk, int, int, Agent], Awaitable[int]],
) -> web.Response:
    """Do ``action`` on the item named by the form's ``field`` (a message, a delivery),
    then show the conversation it returns."""
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    item = form.get(field, "")
    if not item.isdigit():
        raise web.HTTPBadRequest(text=f"{field} is missing")
    try:
        shown = await action(request.app[DESK], conversation_id, int(item), viewer.agent)
    except DeskError as exc:
        raise page_error(exc) from exc
    raise back_to(shown)


async def split(request: web.Request) -> web.Response:
    """A customer message threaded into the wrong conversation gets its own."""

    async def act(desk: HumanDesk, conversation: int, message: int, agent: Agent) -> int:
        return (await desk.split(conversation, message, agent)).id

    return await _on_item(request, "message_id", act)


async def merge(request: web.Request) -> web.Response:
    """A mail that named a conversation its sender is not on joins it: an agent's call."""

    async def act(desk: HumanDesk, conversation: int, message: int, agent: Agent) -> int:
        return (await desk.merge(conversation, message, agent)).id

    return await _on_item(request, "message_id", act)


async def resend(request: web.Request) -> web.Response:
    """A dead reply goes out again."""

    async def act(desk: HumanDesk, conversation: int, delivery: int, agent: Agent) -> int:
        await desk.resend(conversation, delivery, agent)
        return conversation

    return await _on_item(request, "delivery_id", act)


async def save_faq(request: web.Request) -> web.Response:
    """An agent's reply becomes (or extends) a knowledge-base entry; the bot reloads."""
    viewer, form = await posted_form(request)
    conversation_id = conversation_id_of(request)
    question = form_text(form, "question")
    detail = await request.app[DESK].detail(conversation_id, viewer.agent)
    answer = next((m for m in detail.messages if str(m.id) == form.get("message_id", "")), None)
    if answer is None or answer.author_kind.value != "agent":
        raise web.HTTPBadRequest(text="pick an agent's reply")
    bot = request.app[BOT]
    # What the agent kept of their reply (the greeting gone); by default all of it.
    text = form.get("answer", "").strip()[:4000] or answer.text
    # The same answer text as an entry's: a new phrasing of that entry.
    same = next(
        (e for e in bot.matcher.entries if text.strip() in dict(e.answers).values()),
        None,
    )
    suggested = []
    try:
        entry_id = await asyncio.to_thread(
            learn,
            request.app[KNOWLEDGE_PATH],
            question=question,
            answer=text,
            extends=same.id if same else None,
        )
        if same is not None:
            suggested = await suggest_from(request, same, [question])
        await request.app[RELOAD_BOT]()
    except KnowledgeError as exc:
        return await _rerender(request, viewer, 400, notice=str(exc), notice_kind="error")
    await audit_knowledge(
        request,
        viewer.agent,
        "save_faq",
        conversation=conversation_id,
        entry=entry_id,
        question=question,
        new_entry=same is None,
    )
    logger.info("agent %s saved a FAQ phrasing into %s", viewer.agent.name, entry_id)
    notice = texts(viewer.lang)["faq_saved"] + suggested_notice(viewer.lang, suggested)
    return await _rerender(request, viewer, 200, notice=notice, notice_kind="ok")


async def similar_cases(request: web.Request) -> web.Response:
    """Resolved conversations like this one, for the panel under the reply box."""
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    try:
        found = await request.app[ASSIST].for_agent(
            request.app[DESK], conversation_id_of(request), viewer.agent
        )
    except DeskError as exc:
        raise page_error(exc) from exc
    return web.json_response(found)


async def knowledge_search(request: web.Request) -> web.Response:
    """Canned answers for the reply box: the agent's saved replies and macros (filled
    for ``conversation``), then knowledge-base entries, matching what they type."""
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized()
    query = request.query.get("q", "").strip()[:200]
    bot = request.app[BOT]
    raw = request.query.get("conversation", "")
    canned = request.app[CANNED]
    saved = await canned.found(
        viewer.agent,
        query,
        conversation_id=int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None,
        zone=request.app[TIMEZONE],
    )
    results: list[dict[str, Any]] = [
        {
            "id": f"saved-{reply.id}",
            "kind": "macro" if reply.is_macro else "saved",
            "macro": reply.id if reply.is_macro else None,
            "title": reply.title,
            "answer": reply.text if filled is None else filled,
            "actions": presenters.canned(reply, may_change=False),
        }
        for reply, filled in (saved if query else saved[:8])
    ]
    if query:
        # The matcher may read by meaning: a model's work, done off the event loop.
        for candidate in await asyncio.to_thread(bot.matcher.match, query, limit=5):
            entry = bot.matcher.entry(candidate.entry_id)
            if entry is None:
                continue
            language = request.query.get("language") or viewer.lang
            results.append(
                {
                    "id": entry.id,
                    "kind": "kb",
                    "title": entry.title_for(language),
                    "answer": entry.answer_for(language),
                    "score": round(candidate.score, 1),
                }
            )
    return web.json_response({"results": results})


async def attachment(request: web.Request) -> web.StreamResponse:
    """A customer's (or an agent's) file for a signed-in agent, as a download."""
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return download(request.app[FILES].root, request.match_info["ref"], request.query.get("name"))


async def next_conversation(request: web.Request) -> web.Response:
    """The next unassigned conversation in queue order (the viewer's teams' first),
    skipping ``?after=`` (the one on screen); the queue when there is none."""
    viewer = await page_viewer(request)
    after = request.query.get("after", "")
    skip = int(after) if after.isascii() and after.isdigit() and len(after) <= 18 else None
    mine = request.app[ROUTING_SETTINGS].routing.teams_of(viewer.agent.name)
    seen_by = request.app[DESK].seen_by(viewer.agent)
    async with request.app[DATABASE].read() as repo:
        for teams in ([mine] if mine else []) + [None]:
            queued = await repo.queue_page(
                QueueFilter(
                    statuses=(ConversationStatus.QUEUED,),
                    unassigned=True,
                    teams=teams,
                    seen_by=seen_by,
                ),
                limit=2,
            )
            found = next((c for c in queued if c.id != skip), None)
            if found is not None:
                raise web.HTTPSeeOther(f"/inbox/c/{found.id}")
    raise web.HTTPSeeOther("/inbox?tab=unassigned")


# -- saved replies ------------------------------------------------------------------


async def canned_page(
    request: web.Request,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    notice: str | None = None,
    draft: dict[str, str] | None = None,
) -> web.Response:
    """The agent's saved replies and macros, their teams' and everyone's; a form to add."""
    viewer = viewer or await page_viewer(request)
    canned = request.app[CANNED]
    routing = request.app[ROUTING_SETTINGS].routing
    replies = [
        presenters.canned(r, may_change=canned.may_change(viewer.agent, r))
        for r in await canned.usable(viewer.agent)
    ]
    teams = (
        routing.teams
        if viewer.agent.is_admin
        else {k: routing.teams[k] for k in routing.teams_of(viewer.agent.name)}
    )
    return render(
        request,
        "canned.html",
        viewer,
        status=status,
        replies=replies,
        teams=[(k, t.name) for k, t in teams.items()],
        team_names={k: t.name for k, t in routing.teams.items()},
        notice=notice,
        draft=draft or {},
    )


async def canned_add(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    priority = form.get("priority") or None
    scope = form.get("scope", "mine")
    try:
        draft = CannedDraft(
            title=form.get("title", "").strip(),
            text=form.get("text", "").strip(),
            scope="team" if scope.startswith("team:") else scope,
            team=scope.removeprefix("team:") if scope.startswith("team:") else None,
            tags=tuple(
                t.strip() for t in form.get("tags", "").replace("，", ",").split(",") if t.strip()
            ),
            priority=Priority.parse(priority)
            if priority in ("low", "normal", "high", "urgent")
            else None,
            resolve=form.get("resolve") == "1",
        )
        await request.app[CANNED].create(viewer.agent, draft)
    except (ValueError, DeskError) as exc:
        return await canned_page(request, viewer=viewer, status=400, notice=str(exc), draft=form)
    raise web.HTTPSeeOther("/inbox/canned")


async def canned_delete(request: web.Request) -> web.Response:
    viewer, _ = await posted_form(request)
    raw = request.match_info["reply_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(text="no such saved reply")
    try:
        await request.app[CANNED].delete(viewer.agent, int(raw))
    except DeskError as exc:
        raise page_error(exc) from exc
    raise web.HTTPSeeOther("/inbox/canned")


# -- admin --------------------------------------------------------------------------


async def admin_page(request: web.Request) -> web.Response:
    viewer = await page_viewer(request)
    require_admin(viewer)
    async with request.app[DATABASE].read() as repo:
        agents = await repo.agents()
    return render(request, "admin.html", viewer, agents=agents, notice=request.query.get("notice"))


async def admin_audit_page(request: web.Request) -> web.Response:
    """Who did what, when and from where: newest first, 100 a page."""
    viewer = await page_viewer(request)
    require_admin(viewer)
    before = request.query.get("before", "")
    action = request.query.get("action", "").strip()[:64] or None
    async with request.app[DATABASE].read() as repo:
        entries = await repo.audit_entries(
            limit=100,
            before_id=int(before)
            if before.isascii() and before.isdigit() and len(before) < 18
            else None,
            action=action,
        )
    zone = request.app[TIMEZONE]
    rows = [presenters.audit_entry(e, zone) for e in entries]
    return render(
        request,
        "admin_audit.html",
        viewer,
        entries=rows,
        action=action,
        older=entries[-1].id if len(entries) == 100 else None,
    )


def _settings_page(
    request: web.Request,
    viewer: Viewer,
    settings: EditableSection[Any],
    *,
    status: int = 200,
    text: str | None = None,
    errors: list[str] | None = None,
    saved: bool = False,
) -> web.Response:
    """An editable settings section's page: what is in force, and its YAML to edit."""
    if settings.KEY == "sla":
        template = "admin_sla.html"
        extra: dict[str, Any] = {
            "overview": presenters.sla_policies(
                request.app[AFTERCARE].policies, request.app[CLOCK]()
            )
        }
    else:
        template = "admin_routing.html"
        extra = {"overview": presenters.routing(request.app[ROUTING_SETTINGS].routing)}
    return render(
        request,
        template,
        viewer,
        status=status,
        text=settings.as_yaml() if text is None else text,
        errors=errors or [],
        saved=saved,
        edited=settings.edited,
        **extra,
    )


def _section(request: web.Request) -> EditableSection[Any]:
    routing, sla = request.app[ROUTING_SETTINGS], request.app[SLA_SETTINGS]
    return routing if request.path.endswith("/routing") else sla


async def admin_settings_page(request: web.Request) -> web.Response:
    viewer = await page_viewer(request)
    require_admin(viewer)
    return _settings_page(request, viewer, _section(request))


async def admin_settings_save(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    require_admin(viewer)
    settings = _section(request)
    text = form.get("settings", "")
    try:
        await settings.save(text, viewer.agent)
    except SettingsRefused as exc:
        return _settings_page(request, viewer, settings, status=400, text=text, errors=exc.reasons)
    return _settings_page(request, viewer, settings, saved=True)


async def admin_add(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    require_admin(viewer)
    try:
        await request.app[ACCOUNTS].create(
            form_text(form, "name")[:100],
            form.get("password", ""),
            role=form.get("role", "agent"),
            by=viewer.agent,
        )
    except ValueError as exc:
        raise web.HTTPSeeOther("/inbox/admin?" + urlencode({"notice": str(exc)})) from exc
    raise web.HTTPSeeOther("/inbox/admin")


async def admin_change(request: web.Request) -> web.Response:
    viewer, form = await posted_form(request)
    require_admin(viewer)
    try:
        agent_id = int(request.match_info["agent_id"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc
    action = request.match_info["action"]
    accounts = request.app[ACCOUNTS]
    try:
        if action == "disable":
            await accounts.set_active(agent_id, False, by=viewer.agent)
        elif action == "enable":
            await accounts.set_active(agent_id, True, by=viewer.agent)
        elif action == "password":
            await accounts.set_password(agent_id, form.get("password", ""), by=viewer.agent)
        else:
            raise web.HTTPNotFound()
    except ValueError as exc:
        raise web.HTTPSeeOther("/inbox/admin?" + urlencode({"notice": str(exc)})) from exc
    raise web.HTTPSeeOther("/inbox/admin")


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
