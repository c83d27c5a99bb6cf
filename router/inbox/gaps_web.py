"""Knowledge-base gaps (what customers asked that no entry answers) and the synonyms
learned from agents' answers: the pages and API leads and admins decide them in."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
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
from router.inbox.reports_web import may_see_reports, page_filter, report_filter, report_query
from router.inbox.session import posted_form, render, require_admin
from router.keys import (
    AFTERCARE,
    BOT,
    CLOCK,
    DATABASE,
    KNOWLEDGE_PATH,
    RELEARN,
)
from router.reporting.kb_gaps import find_gaps
from router.storage import Agent, ReportFilter

__all__ = [
    "api_decide_synonym",
    "api_gaps",
    "api_synonyms",
    "audit_knowledge",
    "decide_synonym",
    "gap_routes",
    "page_gaps",
    "publish_gap",
    "suggest_from",
    "suggested_notice",
]

logger = logging.getLogger(__name__)


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
    may_see_reports(await agent_of(request))
    return json_response({"clusters": await _gaps(request, report_filter(request))})


async def page_gaps(request: web.Request) -> web.Response:
    viewer, where = await page_filter(request)
    query = report_query(request)
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
        request.app[RELEARN]()
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
    request.app[RELEARN]()  # the bot learns it in the background
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


def gap_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/agent/reports/gaps", api_gaps),
        web.get("/inbox/reports/gaps", page_gaps),
        web.post("/inbox/reports/gaps/publish", publish_gap),
        web.post("/inbox/reports/gaps/synonyms", decide_synonym),
        web.get("/api/agent/knowledge/synonyms", api_synonyms),
        web.post("/api/agent/knowledge/synonyms", api_decide_synonym),
    ]
