"""Inbox plumbing: who is signed in, CSRF-checked forms, rendering with escaping.

Sessions are server-side (a random token in an HttpOnly, SameSite=Lax cookie,
Secure behind TLS); every state-changing request carries the session's CSRF
token; a disabled agent's session stops working on the next request. All
customer text reaches the page through Jinja2's autoescaping, and the pages'
Content-Security-Policy allows no inline script, so nothing a customer writes
can run in an agent's browser.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web

from router.conversations import ConversationStatus
from router.desk.sla import holiday_gaps
from router.inbox.i18n import HTML_LANG, pick_language, texts
from router.inbox.keys import ACCOUNTS
from router.keys import AFTERCARE, CLOCK
from router.storage import Agent

logger = logging.getLogger(__name__)

__all__ = [
    "Viewer",
    "back_to",
    "conversation_id_of",
    "current_viewer",
    "form_text",
    "page_viewer",
    "posted_form",
    "render",
    "require_admin",
    "require_same_origin",
    "same_origin",
]


COOKIE = "relaydesk_session"
STATIC = Path(__file__).parent / "static"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
# A status, priority, reason or outcome code in the page's language: {{ label(t, code) }}.
TEMPLATES.globals["label"] = lambda t, code: t.get(f"code_{code}", code) if code else ""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
TABS = {
    # Handed off, nobody owns it yet: what needs a person.
    "unassigned": (ConversationStatus.QUEUED,),
    "mine": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "open": (ConversationStatus.QUEUED, ConversationStatus.ASSIGNED),
    "resolved": (ConversationStatus.RESOLVED,),
    # With the bot (and machine-made mail nobody answers): to watch, or step in.
    "bot": (ConversationStatus.BOT,),
}
CHANNELS = ("webchat", "email", "telegram")
MAX_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class Viewer:
    agent: Agent
    csrf: str
    token: str
    lang: str


# -- plumbing ---------------------------------------------------------------------


def render(
    request: web.Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
) -> web.Response:
    lang = (
        viewer.lang if viewer else pick_language(None, request.headers.get("Accept-Language", ""))
    )
    if template.startswith("admin"):
        # Where an admin looks: a year whose holidays the calendars lack.
        context.setdefault(
            "holiday_gaps", holiday_gaps(request.app[AFTERCARE].policies, request.app[CLOCK]())
        )
    html = TEMPLATES.get_template(template).render(
        t=texts(lang),
        lang=lang,
        html_lang=HTML_LANG.get(lang, "en"),
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
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )


async def current_viewer(request: web.Request) -> Viewer | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = await request.app[ACCOUNTS].session(token)
    if found is None:
        return None
    agent, csrf = found
    lang = pick_language(agent.language, request.headers.get("Accept-Language", ""))
    return Viewer(agent, csrf, token, lang)


def same_origin(request: web.Request) -> bool:
    """Whether a browser says this request comes from one of our own pages.

    Browsers send ``Origin`` with every POST and websocket handshake, and
    ``Sec-Fetch-Site`` with every request; a page on another site cannot forge
    either. Requests with neither (curl, scripts) carry no ambient browser
    credentials worth stealing, so they pass.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin == "null":
            return False
        return urlsplit(origin).netloc.lower() == request.host.lower()
    site = request.headers.get("Sec-Fetch-Site")
    return site is None or site in ("same-origin", "none")


def require_same_origin(request: web.Request) -> None:
    if not same_origin(request):
        logger.warning(
            "refused %s %s from origin %r (remote %s)",
            request.method,
            request.path,
            request.headers.get("Origin") or request.headers.get("Sec-Fetch-Site"),
            request.remote,
        )
        raise web.HTTPForbidden(text="cross-site request refused")


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound("/inbox/login?" + urlencode({"next": request.path_qs}))


async def page_viewer(request: web.Request) -> Viewer:
    viewer = await current_viewer(request)
    if viewer is None:
        raise _login_redirect(request)
    return viewer


async def posted_form(request: web.Request) -> tuple[Viewer, dict[str, str]]:
    """The signed-in agent and the posted form, after the CSRF check."""
    viewer = await posting_viewer(request)
    form = await request.post()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, viewer, fields)
    return viewer, fields


async def posting_viewer(request: web.Request) -> Viewer:
    """The signed-in agent of a same-origin POST, before its body is read."""
    require_same_origin(request)
    viewer = await current_viewer(request)
    if viewer is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return viewer


def check_csrf(request: web.Request, viewer: Viewer, form: dict[str, str]) -> None:
    sent = str(form.get("csrf") or request.headers.get("X-CSRF-Token") or "")
    if not sent or not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")


def require_admin(viewer: Viewer) -> None:
    if not viewer.agent.is_admin:
        raise web.HTTPForbidden(text="admins only")


def conversation_id_of(request: web.Request) -> int:
    try:
        return int(request.match_info["conversation_id"])
    except ValueError as exc:
        raise web.HTTPNotFound() from exc


def form_text(form: dict[str, str], key: str = "text") -> str:
    text = form.get(key, "").strip()
    if not text:
        raise web.HTTPBadRequest(text=f"{key} is empty")
    return text[:MAX_TEXT]


def back_to(conversation_id: int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/inbox/c/{conversation_id}")
