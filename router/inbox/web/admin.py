"""Saved replies, and the admin pages: agents, settings (SLA, routing), the audit log."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from router.conversations import Priority
from router.desk.canned import CannedDraft
from router.errors import DeskError, page_error
from router.inbox import presenters
from router.inbox.keys import ACCOUNTS
from router.inbox.session import (
    Viewer,
    form_text,
    page_viewer,
    posted_form,
    render,
    require_admin,
)
from router.keys import (
    AFTERCARE,
    CANNED,
    CLOCK,
    DATABASE,
    ROUTING_SETTINGS,
    SLA_SETTINGS,
    TIMEZONE,
)
from router.settings.editable import EditableSection, SettingsRefused

__all__ = [
    "admin_add",
    "admin_audit_page",
    "admin_change",
    "admin_page",
    "admin_settings_page",
    "admin_settings_save",
    "canned_add",
    "canned_delete",
    "canned_page",
]

logger = logging.getLogger(__name__)


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
