"""The knowledge base from the inbox: save an answer as an FAQ, search it, similar past
cases; files and the next conversation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from knowledge import KnowledgeError, learn
from router.conversations import ConversationStatus
from router.delivery.files import download
from router.errors import DeskError, page_error
from router.inbox import presenters
from router.inbox.gaps_web import audit_knowledge, suggest_from, suggested_notice
from router.inbox.i18n import content_language, texts
from router.inbox.session import (
    conversation_id_of,
    current_viewer,
    form_text,
    page_viewer,
    posted_form,
)
from router.inbox.web.actions import rerender
from router.keys import (
    ASSIST,
    BOT,
    CANNED,
    DATABASE,
    DESK,
    FILES,
    KNOWLEDGE_PATH,
    RELEARN,
    ROUTING_SETTINGS,
    TIMEZONE,
)
from router.storage import QueueFilter

__all__ = [
    "attachment",
    "knowledge_search",
    "next_conversation",
    "save_faq",
    "similar_cases",
]

logger = logging.getLogger(__name__)


async def save_faq(request: web.Request) -> web.Response:
    """An agent's reply becomes (or extends) a knowledge-base entry; the bot relearns."""
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
    except KnowledgeError as exc:
        return await rerender(request, viewer, 400, notice=str(exc), notice_kind="error")
    await audit_knowledge(
        request,
        viewer.agent,
        "save_faq",
        conversation=conversation_id,
        entry=entry_id,
        question=question,
        new_entry=same is None,
    )
    # The bot learns it in the background: a refit takes seconds nobody should wait for.
    request.app[RELEARN]()
    logger.info("agent %s saved a FAQ phrasing into %s", viewer.agent.name, entry_id)
    notice = texts(viewer.lang)["faq_saved"] + suggested_notice(viewer.lang, suggested)
    return await rerender(request, viewer, 200, notice=notice, notice_kind="ok")


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
            language = request.query.get("language") or content_language(viewer.lang)
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
