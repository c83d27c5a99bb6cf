"""Reports for leads and admins: the page at /inbox/reports, its CSV tables and
drill-downs, and the same figures as JSON under /api/agent/reports."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.base import encodable
from knowledge import (
    FaqEntry,
    KnowledgeError,
    Suggestion,
    accept_suggestion,
    dismiss_suggestion,
    learn,
    pending_suggestions,
    suggest_synonyms,
)
from router import audit
from router.errors import ApiError
from router.inbox.api.common import agent_of, json_body, json_response
from router.inbox.i18n import texts
from router.inbox.presenters import summary
from router.inbox.session import Viewer, page_viewer, posted_form, render, require_admin
from router.keys import (
    AFTERCARE,
    BOT,
    CLOCK,
    DATABASE,
    KNOWLEDGE_PATH,
    RELOAD_BOT,
    ROUTING_SETTINGS,
    TIMEZONE,
)
from router.reporting.kb_gaps import find_gaps
from router.reporting.reports import DEFINITIONS, Report, build_report, conversations_behind, period
from router.storage import Agent, ReportFilter

__all__ = ["report_routes"]

logger = logging.getLogger(__name__)

_FILTERS = ("from", "to", "channel", "agent", "language", "tag", "team")


def _where(request: web.Request) -> ReportFilter:
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


def _may_see(agent: Agent) -> None:
    if not agent.sees_reports:
        raise ApiError(403, "forbidden", "reports are for leads and admins")


# -- the JSON API ---------------------------------------------------------------------


async def api_report(request: web.Request) -> web.Response:
    """``?from=2026-11-01&to=2026-11-30&channel=&agent=&language=&tag=`` (default: the
    last 7 days in the desk's time zone)."""
    _may_see(await agent_of(request))
    report, _ = await _report(request, _where(request))
    return json_response({**report.figures, "definitions": DEFINITIONS})


async def api_drill(request: web.Request) -> web.Response:
    """The conversations behind one figure: ``?figure=bot_outcome&key=assumed`` (and the
    report's filters)."""
    _may_see(await agent_of(request))
    ids, names = await _behind(request, _where(request))
    return json_response({"conversations": await _summaries(request, ids, names)})


async def api_csv(request: web.Request) -> web.Response:
    _may_see(await agent_of(request))
    return await _csv(request)


async def _csv(request: web.Request) -> web.Response:
    report, _ = await _report(request, _where(request))
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


def _query(request: web.Request) -> dict[str, str]:
    """The report filters given, to carry into links."""
    return {k: v for k, v in request.query.items() if k in _FILTERS and v}


async def _page_where(request: web.Request) -> tuple[Viewer, ReportFilter]:
    """A lead's or admin's page request and its filters (a 400 page when they are wrong)."""
    viewer = await page_viewer(request)
    _viewer_may_see(viewer)
    try:
        return viewer, _where(request)
    except ApiError as exc:
        raise web.HTTPBadRequest(text=exc.message) from exc


async def page(request: web.Request) -> web.Response:
    viewer, where = await _page_where(request)
    report, names = await _report(request, where)
    zone = request.app[TIMEZONE]
    query = _query(request)
    shown = {
        "from": where.start.astimezone(zone).date().isoformat(),
        "to": (where.end.astimezone(zone) - timedelta(days=1)).date().isoformat(),
    }
    return render(
        request,
        "reports.html",
        viewer,
        figures=report.figures,
        definitions={k: v[viewer.lang] for k, v in DEFINITIONS.items()},
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
    viewer, where = await _page_where(request)
    figure, key = request.query.get("figure", ""), request.query.get("key", "")
    ids, names = await _behind(request, where)
    conversations = await _summaries(request, ids, names)
    query = _query(request)
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


async def _gaps(request: web.Request, where: ReportFilter) -> list[Any]:
    bot = request.app[BOT]
    clusters = await find_gaps(
        request.app[DATABASE],
        bot.matcher,
        where,
        low_rating=request.app[AFTERCARE].policies.low_rating,
    )
    return [c.as_json(bot.matcher) for c in clusters]


async def api_gaps(request: web.Request) -> web.Response:
    """The questions the bot could not answer, grouped, biggest first."""
    _may_see(await agent_of(request))
    return json_response({"clusters": await _gaps(request, _where(request))})


async def page_gaps(request: web.Request) -> web.Response:
    viewer, where = await _page_where(request)
    query = _query(request)
    return render(
        request,
        "report_gaps.html",
        viewer,
        clusters=await _gaps(request, where),
        suggestions=await _suggestions(request) if viewer.agent.is_admin else [],
        query=urlencode(query),
        notice=request.query.get("notice"),
    )


async def suggest_from(
    request: web.Request, entry: FaqEntry, phrasings: list[str]
) -> list[Suggestion]:
    """Synonyms suggested by ``phrasings`` newly added to ``entry`` (its questions as
    they were before), for an admin to accept on the gap page."""
    matcher = request.app[BOT].matcher
    try:
        return await asyncio.to_thread(
            suggest_synonyms,
            request.app[KNOWLEDGE_PATH],
            phrasings,
            entry.questions,
            entry=entry.id,
            knowledge_base=[q for e in matcher.entries for q in e.questions],
            same=matcher.normaliser.fold,
        )
    except (KnowledgeError, OSError):
        logger.warning("could not record synonym suggestions", exc_info=True)
        return []


async def _suggestions(request: web.Request) -> list[Suggestion]:
    try:
        return await asyncio.to_thread(pending_suggestions, request.app[KNOWLEDGE_PATH])
    except (KnowledgeError, OSError):
        logger.warning("could not read the synonym suggestions", exc_info=True)
        return []


def suggested_notice(language: str, found: list[Suggestion]) -> str:
    if not found:
        return ""
    pairs = "、".join(f"{s.variant} = {s.canonical}" for s in found)
    return " " + texts(language)["synonyms_suggested"].format(pairs=pairs)


async def _decide(request: web.Request, agent: Agent, variant: str, action: str) -> Suggestion:
    """Accept or dismiss; written to the audit log (``accept_synonym``/``dismiss_synonym``)."""
    folder = request.app[KNOWLEDGE_PATH]
    if action == "accept":
        found = await asyncio.to_thread(accept_suggestion, folder, variant)
        await request.app[RELOAD_BOT]()
    else:
        found = await asyncio.to_thread(dismiss_suggestion, folder, variant)
    await audit_knowledge(
        request,
        agent,
        f"{action}_synonym",
        variant=found.variant,
        canonical=found.canonical,
        entry=found.entry,
    )
    return found


async def audit_knowledge(
    request: web.Request,
    agent: Agent,
    action: str,
    *,
    conversation: int | None = None,
    **detail: Any,
) -> None:
    """Write a change to the knowledge base into the audit log: who taught the bot
    what (target ``conversation`` when it came from one, else ``knowledge``)."""
    async with request.app[DATABASE].write() as repo:
        await audit.record(
            repo,
            request.app[CLOCK](),
            agent,
            action,
            "knowledge" if conversation is None else "conversation",
            conversation,
            **detail,
        )


async def api_synonyms(request: web.Request) -> web.Response:
    """Admins: the words suggested by phrasings saved to entries, awaiting a decision."""
    if not (await agent_of(request)).is_admin:
        raise ApiError(403, "forbidden", "only admins decide on suggested words")
    return json_response({"suggestions": [asdict(s) for s in await _suggestions(request)]})


async def api_decide_synonym(request: web.Request) -> web.Response:
    """Admins: ``{"variant": "趴窝了", "action": "accept" | "dismiss"}``."""
    agent = await agent_of(request)
    if not agent.is_admin:
        raise ApiError(403, "forbidden", "only admins decide on suggested words")
    body = await json_body(request)
    variant, action = body.get("variant"), body.get("action")
    if not isinstance(variant, str) or not 0 < len(variant) <= 100 or not encodable(variant):
        raise ApiError(400, "invalid_body", "variant: the suggested word, up to 100 characters")
    if action not in ("accept", "dismiss"):
        raise ApiError(400, "invalid_body", "action: accept or dismiss")
    try:
        found = await _decide(request, agent, variant, action)
    except KnowledgeError as exc:
        raise ApiError(404, "not_found", f"no pending suggestion for {variant!r}") from exc
    logger.info("%s %sed the synonym suggestion %s", agent.name, action, variant)
    return json_response({**asdict(found), "status": f"{action}ed"})


async def decide_synonym(request: web.Request) -> web.Response:
    """An admin accepts a suggested synonym (the bot reloads with it) or dismisses it."""
    viewer, form = await posted_form(request)
    require_admin(viewer)
    variant = form.get("variant", "").strip()[:100]
    action = form.get("action", "")
    if action not in ("accept", "dismiss") or not variant:
        raise web.HTTPBadRequest(text="accept or dismiss a suggested word")
    t = texts(viewer.lang)
    try:
        found = await _decide(request, viewer.agent, variant, action)
        if action == "accept":
            notice = t["synonym_accepted"].format(variant=found.variant, canonical=found.canonical)
        else:
            notice = t["synonym_dismissed"].format(variant=found.variant)
    except KnowledgeError as exc:
        raise web.HTTPSeeOther("/inbox/reports/gaps?" + urlencode({"notice": str(exc)})) from exc
    logger.info("%s %sed the synonym suggestion %s", viewer.agent.name, action, variant)
    raise web.HTTPSeeOther("/inbox/reports/gaps?" + urlencode({"notice": notice}))


async def publish_gap(request: web.Request) -> web.Response:
    """An admin publishes a drafted entry, or adds the phrasings to an existing one; the
    bot reloads."""
    viewer, form = await posted_form(request)
    require_admin(viewer)
    questions = [q.strip()[:300] for q in form.get("questions", "").splitlines() if q.strip()]
    answer = form.get("answer", "").strip()[:4000]
    extends = form.get("extends", "").strip() or None
    bot = request.app[BOT]
    extended = bot.matcher.entry(extends) if extends is not None else None
    if extends is not None and extended is None:
        raise web.HTTPBadRequest(text=f"no entry {extends}")
    t = texts(viewer.lang)
    suggested: list[Suggestion] = []
    try:
        if not questions:
            raise KnowledgeError(t["gap_no_questions"])
        entry_id = await asyncio.to_thread(
            learn,
            request.app[KNOWLEDGE_PATH],
            question=questions[0],
            answer=answer,
            extends=extends,
            more=questions[1:],
        )
        if extended is not None:
            suggested = await suggest_from(request, extended, questions)
        await request.app[RELOAD_BOT]()
    except KnowledgeError as exc:
        raise web.HTTPSeeOther("/inbox/reports/gaps?" + urlencode({"notice": str(exc)})) from exc
    await audit_knowledge(
        request,
        viewer.agent,
        "publish_faq",
        entry=entry_id,
        questions=questions,
        new_entry=extended is None,
    )
    logger.info(
        "%s published %d phrasing(s) into %s from the gap report",
        viewer.agent.name,
        len(questions),
        entry_id,
    )
    raise web.HTTPSeeOther(
        "/inbox/reports/gaps?"
        + urlencode(
            {
                "notice": t["gap_published"].format(entry=entry_id)
                + suggested_notice(viewer.lang, suggested)
            }
        )
    )


def report_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/agent/reports", api_report),
        web.get("/api/agent/reports/conversations", api_drill),
        web.get("/api/agent/reports/{table}.csv", api_csv),
        web.get("/inbox/reports", page),
        web.get("/inbox/reports/conversations", page_drill),
        web.get("/inbox/reports/{table}.csv", page_csv),
        web.get("/api/agent/reports/gaps", api_gaps),
        web.get("/inbox/reports/gaps", page_gaps),
        web.post("/inbox/reports/gaps/publish", publish_gap),
        web.post("/inbox/reports/gaps/synonyms", decide_synonym),
        web.get("/api/agent/knowledge/synonyms", api_synonyms),
        web.post("/api/agent/knowledge/synonyms", api_decide_synonym),
    ]
