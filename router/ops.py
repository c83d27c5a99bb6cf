"""Operations endpoints: ``/`` (to the chat), ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router.keys import CHANNELS, DATABASE, DISPATCHER, EVENT_BUS, IMAP_POLLERS

__all__ = ["ops_routes"]


def ops_routes() -> list[web.RouteDef]:
    return [
        web.get("/", _home),
        web.get("/healthz", _health),
        web.get("/metrics", _metrics),
    ]


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
    return web.json_response(body, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    app = request.app
    async with app[DATABASE].read() as repo:
        conversations = await repo.count_by_status()
        outbox = await repo.count_outbox_by_status()
    lines = ["# TYPE relaydesk_conversations gauge"]
    lines += [
        f'relaydesk_conversations{{status="{s}"}} {n}' for s, n in sorted(conversations.items())
    ]
    lines.append("# TYPE relaydesk_outbox gauge")
    lines += [f'relaydesk_outbox{{status="{s}"}} {n}' for s, n in sorted(outbox.items())]
    lines.append("# TYPE relaydesk_replies_delivered_total counter")
    lines.append(f"relaydesk_replies_delivered_total {app[DISPATCHER].delivered}")
    lines.append("# TYPE relaydesk_events_published_total counter")
    lines.append(f"relaydesk_events_published_total {app[EVENT_BUS].published}")
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
