"""Operations endpoints: ``/`` (to the chat), ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from router.desk.sla import missing_holidays
from router.inbox.keys import PRESENCE
from router.keys import (
    AFTERCARE,
    BOT,
    CHANNELS,
    CLOCK,
    DATABASE,
    IMAP_POLLERS,
    METRICS_TOKEN,
    SEMANTIC,
)
from router.metrics import Snapshot, exposition

__all__ = ["ops_routes"]


def ops_routes() -> list[web.RouteDef]:
    return [
        web.get("/", _home),
        web.get("/healthz", _health),
        web.get("/metrics", _metrics),
        web.get("/favicon.ico", _icon),
    ]


# A speech bubble in the inbox's blue: what a browser asks for on every page.
_ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<path fill="#2f6fed" d="M6 4h20a4 4 0 0 1 4 4v12a4 4 0 0 1-4 4H14l-7 6v-6H6a4 4 0 0 1-4-4V8'
    b'a4 4 0 0 1 4-4z"/><path fill="#fff" d="M9 11h14v2H9zm0 5h10v2H9z"/></svg>'
)


async def _icon(request: web.Request) -> web.Response:
    return web.Response(
        body=_ICON,
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def _home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/chat")


async def _health(request: web.Request) -> web.Response:
    app = request.app
    try:
        async with app[DATABASE].read() as repo:
            await repo.count_by_status()
        database = "ok"
    except Exception as exc:  # the check itself must answer, whatever broke
        database = f"error: {type(exc).__name__}"
    channels = {name: ch.health() for name, ch in app[CHANNELS].items()}
    imap = [
        {
            "account": f"{p.settings.username}@{p.settings.host}",
            "ok": not p.last_error,
            "detail": p.last_error
            or (f"{p.processed} mails taken in" if p.running else "standby: another node polls"),
        }
        for p in app.get(IMAP_POLLERS, [])
    ]
    ok = database == "ok" and all(h.ok for h in channels.values()) and all(i["ok"] for i in imap)
    body: dict[str, Any] = {
        "status": "ok" if ok else "degraded",
        "database": database,
        "channels": {n: {"ok": h.ok, "detail": h.detail} for n, h in channels.items()},
    }
    if imap:
        body["imap"] = imap
    if BOT in app:
        # Which scripts the bot reads by meaning: a model that could not load leaves
        # its script to characters and words (a warning, not a failure).
        matcher = app[BOT].matcher
        meaning = matcher.reads_meaning
        body["knowledge"] = {"entries": len(matcher), "meaning": meaning}
        missing = ", ".join(s for s in app[SEMANTIC] if not meaning.get(s))
        if missing:
            body.setdefault("warnings", []).append(
                f"the bot reads {missing} by characters and words only: its meaning model "
                "could not load (see the log at start)"
            )
    if AFTERCARE in app:
        # A year without its holidays (a warning: the desk still works, its promises
        # are wrong on those days).
        for warning in missing_holidays(app[AFTERCARE].policies, app[CLOCK]()):
            body.setdefault("warnings", []).append(warning)
    return web.json_response(body, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus text format; behind a bearer token when ``server.metrics_token`` is set."""
    app = request.app
    token = app[METRICS_TOKEN]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise web.HTTPUnauthorized(
                text="send 'Authorization: Bearer <server.metrics_token>'",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    async with app[DATABASE].read() as repo:
        conversations = await repo.count_by_status()
        outbox = await repo.count_outbox_by_status()
        oldest = await repo.oldest_pending()
    webchat = app[CHANNELS].get("webchat")
    sockets = {
        "webchat": getattr(webchat, "connected", 0),
        "inbox": app[PRESENCE].connected,
    }
    snapshot = Snapshot(
        conversations=conversations,
        outbox=outbox,
        oldest_pending=oldest,
        now=app[CLOCK](),
        sockets=sockets,
    )
    return web.Response(body=exposition(snapshot), headers={"Content-Type": CONTENT_TYPE_LATEST})
