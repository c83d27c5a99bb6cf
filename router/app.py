"""The composition root: builds the world from the configuration, and tears it down.

Nothing else constructs the database, the bot, the router or a concrete channel.
The service is an ordered list of named lifecycles: each starts one resource and,
after the ``yield``, stops it. They start in list order and stop in reverse, so
intake stops before the router it feeds, and the router before the database.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from channels.base import ChannelAdapter
from channels.email import EmailChannel
from channels.http import ClientAddresses
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from router.audit import audit_middleware
from router.builders import (
    build_api_channels,
    build_email,
    build_telegram,
    build_webchat,
    build_wechat,
    build_wecom_kf,
    load_secret,
    utc_now,
)
from router.config import Config
from router.core import core
from router.delivery.channel_state import DatabaseChannelState
from router.delivery.events import EventBus
from router.delivery.files import Files
from router.delivery.pg_events import PgEventBus
from router.delivery.shared_limits import DatabaseRateLimits
from router.delivery.visitor_stream import StoredVisitorStream
from router.desk.survey import survey_routes
from router.errors import error_middleware
from router.front_line import cache_dir
from router.inbox import (
    Accounts,
    DatabaseThrottles,
    LoginLimiter,
    Presence,
    agent_routes,
    inbox_routes,
    openapi_route,
)
from router.inbox.gaps_web import gap_routes
from router.inbox.keys import ACCOUNTS, LIVE_SOCKETS, PRESENCE, close_live_sockets
from router.inbox.reports_web import report_routes
from router.keys import (
    CHANNELS,
    CLIENT_ADDRESSES,
    CLOCK,
    DATABASE,
    EVENT_BUS,
    FILES,
    KNOWLEDGE_PATH,
    METRICS_TOKEN,
    TIMEZONE,
)
from router.lifecycles import (
    Lifecycle,
    alerting,
    auto_assignment,
    background,
    channel_intake,
    event_bus,
    mail_intake,
    named,
    presence,
    pruning,
    reloading,
    scheduling,
    storage,
    typing_bridge,
)
from router.ops import ops_routes
from router.storage import Database

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    extra_channels: Sequence[ChannelAdapter] = (),
    clock: Callable[[], datetime] = utc_now,
    database: Database | None = None,
) -> web.Application:
    """The whole service as one aiohttp application.

    ``extra_channels`` adds channels beside the configured ones (tests use the
    in-memory channel); ``database`` replaces the configured store (tests), which
    the caller then migrates and disposes of.
    """
    addresses = ClientAddresses(config.server.trusted_proxies)
    app = web.Application(
        middlewares=[error_middleware, audit_middleware(addresses)], client_max_size=1024**2
    )
    # The engine connects on first use; the storage lifecycle migrates and disposes of it.
    db = database or Database(config.storage.url, echo=config.storage.echo)
    # Several nodes share PostgreSQL: their events travel by LISTEN/NOTIFY.
    events: EventBus = EventBus() if db.is_sqlite else PgEventBus(db.engine)
    app[DATABASE] = db
    app[EVENT_BUS] = events
    app[CLOCK] = clock
    app[METRICS_TOKEN] = config.server.metrics_token
    app[TIMEZONE] = config.sla.zone
    app[CLIENT_ADDRESSES] = addresses
    app[KNOWLEDGE_PATH] = config.knowledge.path
    app[PRESENCE] = Presence(db, events)
    app[LIVE_SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_live_sockets)
    app[ACCOUNTS] = Accounts(
        db=db,
        clock=clock,
        session_hours=config.inbox.session_hours,
        # Counted in the database: across nodes, and through restarts.
        limiter=LoginLimiter(attempts=config.inbox.login_attempts, store=DatabaseThrottles(db)),
        secure_cookies=config.inbox.secure_cookies,
    )

    # Signs visitor tokens and keys our Message-IDs: read (or made) once.
    secret = load_secret(config)
    files = app[FILES] = Files(
        root=config.server.attachments_dir,
        secret=secret,
        public_url=config.server.public_url,
        max_bytes=int(config.inbox.max_attachment_mb * 1024 * 1024),
    )
    app.add_routes(files.routes())
    stream = StoredVisitorStream(db=db, clock=clock, events=events)
    built = _channels_of(app, config, secret, stream, addresses, extra_channels)

    lifecycles = _lifecycles(config, built, stream, secret, clock, migrate=database is None)
    app.cleanup_ctx.extend(named(name, lifecycle) for name, lifecycle in lifecycles)
    app.add_routes(
        [
            *ops_routes(),
            *agent_routes(),
            *report_routes(),
            *gap_routes(),
            *inbox_routes(),
            *survey_routes(),
            openapi_route(),
        ]
    )
    return app


@dataclass(frozen=True)
class _Built:
    """The channels the composition root wires further (typing, polling, mail intake)."""

    webchat: WebChatChannel | None
    telegram: TelegramChannel | None
    polling: Lifecycle | None
    email: EmailChannel | None


def _channels_of(
    app: web.Application,
    config: Config,
    secret: bytes,
    stream: StoredVisitorStream,
    addresses: ClientAddresses,
    extra_channels: Sequence[ChannelAdapter],
) -> _Built:
    """Every configured channel, its routes added; ``app[CHANNELS]`` set."""
    db = app[DATABASE]
    channels: dict[str, ChannelAdapter] = {}
    webchat: WebChatChannel | None = None
    if config.channels.webchat.enabled:
        webchat = build_webchat(
            config,
            secret=secret,
            stream=stream,
            addresses=addresses,
            # Several nodes count a visitor's messages together (one node: in memory).
            limits=None if db.is_sqlite else DatabaseRateLimits(db),
        )
        channels[webchat.name] = webchat
        app.add_routes(webchat.routes())
        app.on_shutdown.append(_closing_visitors(webchat))
    polling: Lifecycle | None = None
    telegram: TelegramChannel | None = None
    if config.channels.telegram.enabled:
        telegram = build_telegram(config)
        channels[telegram.name] = telegram
        app.add_routes(telegram.routes())
        if config.channels.telegram.mode == "polling":
            # One node at a time polls (Telegram allows one getUpdates per bot).
            poll = telegram.poll
            polling = background(
                "telegram-polling",
                lambda app: app[DATABASE].while_leader("telegram-polling", poll),
            )
    email = build_email(config, secret=secret) if config.channels.email.enabled else None
    if email is not None:
        channels[email.name] = email
    if config.channels.wechat.enabled:
        wechat = build_wechat(config, tokens=DatabaseChannelState(db))
        channels[wechat.name] = wechat
        app.add_routes(wechat.routes())
    if config.channels.wecom_kf.enabled:
        state = DatabaseChannelState(db)
        kf = build_wecom_kf(config, tokens=state, cursors=state)
        channels[kf.name] = kf
        app.add_routes(kf.routes())
    for bridge in build_api_channels(config):
        channels[bridge.name] = bridge
        app.add_routes(bridge.routes())
    for channel in extra_channels:
        channels[channel.name] = channel
    app[CHANNELS] = channels
    return _Built(webchat, telegram, polling, email)


def _lifecycles(
    config: Config,
    built: _Built,
    stream: StoredVisitorStream,
    secret: bytes,
    clock: Callable[[], datetime],
    *,
    migrate: bool,
) -> list[tuple[str, Lifecycle]]:
    """What starts with the service, in order (and stops in reverse)."""
    lifecycles: list[tuple[str, Lifecycle]] = [
        ("storage", storage(config, migrate=migrate)),
        ("event bus", event_bus()),
        ("presence", presence()),
        ("core", core(config, clock, secret)),
        ("scheduler", scheduling(config)),
        ("alerts", alerting(config, built.email)),
    ]
    if config.knowledge.reload_seconds:
        reloader = background("knowledge-reload", reloading(config.knowledge, cache_dir(config)))
        lifecycles.append(("knowledge reload", reloader))
    lifecycles += [("auto-assignment", auto_assignment(config)), ("channels", channel_intake())]
    if built.polling is not None:
        lifecycles.append(("telegram polling", built.polling))
    if built.email is not None:
        lifecycles.append(("mail intake", mail_intake(config, built.email)))
    if built.webchat is not None or built.telegram is not None:
        lifecycles.append(("typing", typing_bridge(built.webchat, built.telegram)))
    if built.webchat is not None:
        lifecycles.append(
            (
                "web-chat pruning",
                pruning(stream, timedelta(days=config.channels.webchat.token_ttl_days)),
            )
        )
    return lifecycles


def _closing_visitors(webchat: WebChatChannel) -> Callable[[web.Application], Awaitable[None]]:
    async def close(_: web.Application) -> None:
        # Open websockets would hold up a graceful shutdown; clients reconnect.
        await webchat.stop()

    return close
