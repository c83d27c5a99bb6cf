"""Signing in and out, the language, the queue and a conversation's page."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from router.inbox.accounts import LoginRefused, TooManyAttempts
from router.inbox.i18n import LANGUAGES, pick_language, texts
from router.inbox.keys import ACCOUNTS
from router.inbox.session import (
    COOKIE,
    TEMPLATES,
    current_viewer,
    page_viewer,
    posted_form,
    render,
    require_same_origin,
)
from router.inbox.views import conversation_view, queue_view
from router.keys import (
    CLIENT_ADDRESSES,
    FILES,
)

__all__ = [
    "composer",
    "conversation_fragment",
    "conversation_page",
    "login",
    "login_page",
    "logout",
    "queue_fragment",
    "queue_page",
    "set_language",
]

logger = logging.getLogger(__name__)


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
    return render(request, "conversation.html", viewer, **data, **composer(request))


def composer(request: web.Request) -> dict[str, Any]:
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
