"""Reports for leads and admins: the page at /inbox/reports, its CSV tables and
drill-downs, and the same figures as JSON under /api/agent/reports."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from router.errors import ApiError
from router.inbox.api.common import agent_of, json_response
from router.inbox.i18n import in_language, texts
from router.inbox.presenters import summary
from router.inbox.session import Viewer, page_viewer, render
from router.keys import (
    AFTERCARE,
    CLOCK,
    DATABASE,
    ROUTING_SETTINGS,
    TIMEZONE,
)
from router.reporting.definitions import DEFINITIONS
from router.reporting.reports import Report, build_report, conversations_behind, period
from router.storage import Agent, ReportFilter

__all__ = [
    "may_see_reports",
    "page_filter",
    "report_filter",
    "report_query",
    "report_routes",
]

logger = logging.getLogger(__name__)

_FILTERS = ("from", "to", "channel", "agent", "language", "tag", "team")


def report_filter(request: web.Request) -> ReportFilter:
    query = request.query
    zone = request.app[TIMEZONE]
    try:
        start, end = period(
            query.get("from") or None, query.get("to") or None, zone, request.app[CLOCK]()
        )
    except ValueError as exc:
        raise ApiError(
            400, "invalid_query", f"from/to: dates like 2026-11-01, at most a year ({exc})"
        ) from exc
    agent = query.get("agent", "")
    if agent and (not agent.isascii() or not agent.isdigit() or len(agent) > 12):
        raise ApiError(400, "invalid_query", "agent must be an agent's id")
    return ReportFilter(
        start=start,
        end=end,
        channel=query.get("channel") or None,
        agent_id=int(agent) if agent else None,
        language=query.get("language") or None,
        tag=(query.get("tag") or "").strip()[:40] or None,
        team=(query.get("team") or "").strip()[:60] or None,
    )


async def _agent_names(request: web.Request) -> dict[int, str]:
    async with request.app[DATABASE].read() as repo:
        return {a.id: a.name for a in await repo.agents()}


async def _report(request: web.Request, where: ReportFilter) -> tuple[Report, dict[int, str]]:
    names = await _agent_names(request)
    report = await build_report(
        request.app[DATABASE],
        request.app[AFTERCARE].policies,
        where,
        zone=request.app[TIMEZONE],
        now=request.app[CLOCK](),
        agent_names=names,
    )
    return report, names


async def _behind(request: web.Request, where: ReportFilter) -> tuple[list[int], dict[int, str]]:
    """The conversations behind ``?figure=…&key=…``, and the agents' names."""
    names = await _agent_names(request)
    ids = await conversations_behind(
        request.app[DATABASE],
        request.app[AFTERCARE].policies,
        where,
        request.query.get("figure", ""),
        request.query.get("key", ""),
        zone=request.app[TIMEZONE],
        now=request.app[CLOCK](),
    )
    return ids, names


def may_see_reports(agent: Agent) -> None:
    if not agent.sees_reports:
        raise ApiError(403, "forbidden", "reports are for leads and admins")


# -- the JSON API ---------------------------------------------------------------------


async def api_report(request: web.Request) -> web.Response:
    """``?from=2026-11-01&to=2026-11-30&channel=&agent=&language=&tag=`` (default: the
    last 7 days in the desk's time zone)."""
    may_see_reports(await agent_of(request))
    report, _ = await _report(request, report_filter(request))
    return json_response({**report.figures, "definitions": DEFINITIONS})


async def api_drill(request: web.Request) -> web.Response:
    """The conversations behind one figure: ``?figure=bot_outcome&key=assumed`` (and the
    report's filters)."""
    may_see_reports(await agent_of(request))
    ids, names = await _behind(request, report_filter(request))
    return json_response({"conversations": await _summaries(request, ids, names)})


async def api_csv(request: web.Request) -> web.Response:
    may_see_reports(await agent_of(request))
    return await _csv(request)


async def _csv(request: web.Request) -> web.Response:
    report, _ = await _report(request, report_filter(request))
    table = request.match_info["table"]
    try:
        text = report.csv(table)
    except KeyError as exc:
        known = ", ".join(report.tables())
        raise ApiError(404, "not_found", f"no table {table}; tables: {known}") from exc
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="relaydesk-{table}.csv"'},
    )


async def _summaries(request: web.Request, ids: list[int], names: dict[int, str]) -> list[Any]:
    async with request.app[DATABASE].read() as repo:
        found = await repo.conversations_by_id(ids[:500])
    return [summary(found[i], None, names) for i in ids[:500] if i in found]


# -- the page -------------------------------------------------------------------------


def _viewer_may_see(viewer: Viewer) -> None:
    if not viewer.agent.sees_reports:
        raise web.HTTPForbidden(text=texts(viewer.lang)["no_reports"])


def report_query(request: web.Request) -> dict[str, str]:
    """The report filters given, to carry into links."""
    return {k: v for k, v in request.query.items() if k in _FILTERS and v}


async def page_filter(request: web.Request) -> tuple[Viewer, ReportFilter]:
    """A lead's or admin's page request and its filters (a 400 page when they are wrong)."""
    viewer = await page_viewer(request)
    _viewer_may_see(viewer)
    try:
        return viewer, report_filter(request)
    except ApiError as exc:
        raise web.HTTPBadRequest(text=exc.message) from exc


async def page(request: web.Request) -> web.Response:
    viewer, where = await page_filter(request)
    report, names = await _report(request, where)
    zone = request.app[TIMEZONE]
    query = report_query(request)
    shown = {
        "from": where.start.astimezone(zone).date().isoformat(),
        "to": (where.end.astimezone(zone) - timedelta(days=1)).date().isoformat(),
    }
    return render(
        request,
        "reports.html",
        viewer,
        figures=report.figures,
        definitions={k: in_language(v, viewer.lang) for k, v in DEFINITIONS.items()},
        tables=list(report.tables()),
        query=urlencode(query),
        filters={**query, **shown},
        agents=sorted(names.items(), key=lambda kv: kv[1]),
        teams=[(t.key, t.name) for t in request.app[ROUTING_SETTINGS].routing.teams.values()],
        # Rendered with Jinja's tojson, which escapes <, >, & and ' as \u00XX: a
        # customer's tag or choice id can never end or comment out the script element.
        data={
            "figures": report.figures,
            "query": query,
            "lang": viewer.lang,
            "labels": {
                k.removeprefix("code_"): v
                for k, v in texts(viewer.lang).items()
                if k.startswith("code_")
            },
        },
    )


async def page_drill(request: web.Request) -> web.Response:
    viewer, where = await page_filter(request)
    figure, key = request.query.get("figure", ""), request.query.get("key", "")
    ids, names = await _behind(request, where)
    conversations = await _summaries(request, ids, names)
    query = report_query(request)
    return render(
        request,
        "report_drill.html",
        viewer,
        figure=figure,
        key=key,
        conversations=conversations,
        back="/inbox/reports?" + urlencode(query),
    )


async def page_csv(request: web.Request) -> web.Response:
    viewer = await page_viewer(request)
    _viewer_may_see(viewer)
    try:
        return await _csv(request)
    except ApiError as exc:
        raise web.HTTPNotFound(text=exc.message) from exc


# -- knowledge-base gaps ----------------------------------------------------------------


def report_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/agent/reports", api_report),
        web.get("/api/agent/reports/conversations", api_drill),
        web.get("/api/agent/reports/{table}.csv", api_csv),
        web.get("/inbox/reports", page),
        web.get("/inbox/reports/conversations", page_drill),
        web.get("/inbox/reports/{table}.csv", page_csv),
    ]
