"""The satisfaction survey's page behind the signed link in a survey mail.

``GET /survey/{token}`` only shows the form: mail scanners and link previews fetch
every link in a message, so a GET must never record anything. ``POST`` records the
rating (once per conversation) and thanks the customer. The token is an HMAC of
the conversation id with the server secret (``Aftercare.survey_token``); a wrong
one is a 404 that says nothing about which conversations exist.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.texts import preferred_language
from router.desk.aftercare import Rating
from router.keys import AFTERCARE, DATABASE, DESK

__all__ = ["survey_routes"]

logger = logging.getLogger(__name__)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_CSP = (
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_TEXTS: dict[str, dict[str, Any]] = {
    "zh": {
        "title": "服务评价",
        "ask": "请为本次服务（工单 #{ticket}）打分",
        "labels": ["很不满意", "不满意", "一般", "满意", "非常满意"],
        "comment": "您的意见（可选）",
        "send": "提交",
        "thanks": "感谢您的评价！",
        "already": "这次服务已经评价过了，谢谢！",
        "pick": "请选择 1 到 5 分。",
        "gone": "这个评价链接无效。",
    },
    "en": {
        "title": "Rate our service",
        "ask": "How did we do with your request (ticket #{ticket})?",
        "labels": ["Poor", "Fair", "Good", "Very good", "Excellent"],
        "comment": "Anything to tell us? (optional)",
        "send": "Send",
        "thanks": "Thank you for your rating!",
        "already": "This conversation has been rated already. Thank you!",
        "pick": "Please choose from 1 to 5.",
        "gone": "This survey link is not valid.",
    },
}


def _page(request: web.Request, lang: str, status: int = 200, **context: Any) -> web.Response:
    html = _TEMPLATES.get_template("survey.html").render(t=_TEXTS[lang], lang=lang, **context)
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex",
        },
    )


async def _conversation(request: web.Request) -> tuple[int, str, bool] | None:
    conversation_id = request.app[AFTERCARE].survey_conversation(request.match_info["token"])
    if conversation_id is None:
        return None
    async with request.app[DATABASE].read() as repo:
        conversation = await repo.conversation(conversation_id)
    if conversation is None or conversation.survey_asked_at is None:
        return None
    lang = conversation.language or _browser_language(request)
    return conversation_id, lang if lang in _TEXTS else "en", conversation.csat_score is not None


async def show(request: web.Request) -> web.Response:
    """The form; never records (scanners follow links)."""
    found = await _conversation(request)
    if found is None:
        lang = _browser_language(request)
        return _page(request, lang, status=404, state="gone")
    conversation_id, lang, rated = found
    return _page(
        request,
        lang,
        state="already" if rated else "ask",
        ticket=conversation_id,
        action=request.path,
    )


async def record(request: web.Request) -> web.Response:
    found = await _conversation(request)
    if found is None:
        lang = _browser_language(request)
        return _page(request, lang, status=404, state="gone")
    conversation_id, lang, rated = found
    if rated:
        return _page(request, lang, state="already", ticket=conversation_id)
    try:
        form = await request.post()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="not a form") from exc
    score = form.get("score")
    if not isinstance(score, str) or score not in {"1", "2", "3", "4", "5"}:
        return _page(
            request,
            lang,
            status=400,
            state="ask",
            error=True,
            ticket=conversation_id,
            action=request.path,
        )
    comment = form.get("comment")
    text = comment.strip()[:2000] if isinstance(comment, str) and comment.strip() else None
    desk = request.app[DESK]
    recorded = await desk.rate(conversation_id, Rating(int(score), text), via="survey link")
    return _page(request, lang, state="thanks" if recorded else "already", ticket=conversation_id)


def survey_routes() -> list[web.RouteDef]:
    return [web.get("/survey/{token}", show), web.post("/survey/{token}", record)]


def _browser_language(request: web.Request) -> str:
    return preferred_language(request.headers.get("Accept-Language", "")) or "en"
