"""The application's typed state: one key per thing the composition root puts in the app.

Every handler finds what it needs here (``request.app[DESK]``); only
``router.app`` sets them. Types are imported for the checker only, so any module
may import the keys without pulling in what they name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web

if TYPE_CHECKING:
    from bot import Bot
    from channels.base import ChannelAdapter
    from channels.email import ImapPoller, SmtpReceiver
    from channels.http import ClientAddresses
    from router.delivery.events import EventBus
    from router.delivery.files import Files
    from router.delivery.notify import Notifier
    from router.delivery.outbox import OutboxDispatcher
    from router.desk.actions import HumanDesk
    from router.desk.aftercare import Aftercare
    from router.desk.assist import Assist
    from router.desk.canned import Canned
    from router.desk.pipeline import Router
    from router.desk.scheduler import Scheduler
    from router.settings.routing import RoutingSettings
    from router.settings.sla import SlaSettings
    from router.storage import Database

__all__ = [
    "AFTERCARE",
    "ASSIST",
    "BOT",
    "CANNED",
    "CHANNELS",
    "CLIENT_ADDRESSES",
    "CLOCK",
    "DATABASE",
    "DESK",
    "DISPATCHER",
    "EVENT_BUS",
    "FILES",
    "IMAP_POLLERS",
    "KNOWLEDGE_PATH",
    "METRICS_TOKEN",
    "NOTIFIER",
    "RELEARN",
    "RELOAD_BOT",
    "ROUTER",
    "ROUTING_SETTINGS",
    "SCHEDULER",
    "SEMANTIC",
    "SLA_SETTINGS",
    "SMTP_RECEIVER",
    "TIMEZONE",
]

DATABASE: web.AppKey[Database] = web.AppKey("database")
EVENT_BUS: web.AppKey[EventBus] = web.AppKey("events")
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# The desk's time zone: what agents and customers are shown times in.
TIMEZONE: web.AppKey[ZoneInfo] = web.AppKey("timezone")
BOT: web.AppKey[Bot] = web.AppKey("bot")
ROUTER: web.AppKey[Router] = web.AppKey("router")
DESK: web.AppKey[HumanDesk] = web.AppKey("desk")
DISPATCHER: web.AppKey[OutboxDispatcher] = web.AppKey("dispatcher")
CHANNELS: web.AppKey[dict[str, ChannelAdapter]] = web.AppKey("channels")
SMTP_RECEIVER: web.AppKey[SmtpReceiver] = web.AppKey("smtp_receiver")
IMAP_POLLERS: web.AppKey[list[ImapPoller]] = web.AppKey("imap_pollers")
CANNED: web.AppKey[Canned] = web.AppKey("canned")
# Who a request comes from, behind the configured trusted proxies.
CLIENT_ADDRESSES: web.AppKey[ClientAddresses] = web.AppKey("client_addresses")
# Every stored file (customers' and agents'), signed links to them, agents' uploads;
# attachment refs are relative to FILES.root.
FILES: web.AppKey[Files] = web.AppKey("files")
# The knowledge-base folder ("Save as FAQ" writes learned.yaml there).
KNOWLEDGE_PATH: web.AppKey[Path] = web.AppKey("knowledge_path")
# The scripts the configuration asks the bot to read by meaning (knowledge.semantic).
SEMANTIC: web.AppKey[tuple[str, ...]] = web.AppKey("semantic")
# Rebuilds the matcher from the knowledge folder and swaps it in (after "Save as FAQ").
RELOAD_BOT: web.AppKey[Callable[[], Awaitable[None]]] = web.AppKey("reload_bot")
# The same in the background (router.core.Relearning): what agents' clicks ask for.
RELEARN: web.AppKey[Callable[[], None]] = web.AppKey("relearn")
AFTERCARE: web.AppKey[Aftercare] = web.AppKey("aftercare")
# Past cases like the one an agent has open (router.desk.assist).
ASSIST: web.AppKey[Assist] = web.AppKey("assist")
SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler")
NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier")
SLA_SETTINGS: web.AppKey[SlaSettings] = web.AppKey("sla_settings")
ROUTING_SETTINGS: web.AppKey[RoutingSettings] = web.AppKey("routing_settings")
# Guards /metrics when set (server.metrics_token).
METRICS_TOKEN: web.AppKey[str] = web.AppKey("metrics_token", str)
