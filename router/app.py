"""The composition root: builds the world from the configuration, and tears it down.

Nothing else constructs the database, the bot, the router or a concrete channel.
The service is an ordered list of named lifecycles: each starts one resource and,
after the ``yield``, stops it. They start in list order and stop in reverse, so
intake stops before the router it feeds, and the router before the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import Bot
from channels.base import ChannelAdapter
from channels.email import EmailChannel, ImapPoller
from channels.http import ClientAddresses
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from knowledge import KnowledgeError, fingerprint
from router.audit import audit_middleware
from router.builders import (
    build_api_channels,
    build_email,
    build_imap_pollers,
    build_smtp_receiver,
    build_telegram,
    build_webchat,
    build_wechat,
    build_wecom_kf,
    channel_rules,
    load_secret,
    retry_policy,
    sla_policies,
    utc_now,
)
from router.config import Config, KnowledgeConfig
from router.delivery.channel_state import DatabaseChannelState
from router.delivery.events import AgentTyping, EventBus, FrameStored, KnowledgeReloaded, Resync
from router.delivery.files import Files
from router.delivery.notify import Notifier
from router.delivery.outbox import OutboxDispatcher
from router.delivery.pg_events import PgEventBus
from router.delivery.shared_limits import DatabaseRateLimits, forget_full_buckets
from router.delivery.visitor_stream import StoredVisitorStream
from router.desk.actions import HumanDesk
from router.desk.aftercare import Aftercare
from router.desk.assist import Assist
from router.desk.canned import Canned
from router.desk.handoff import Handoffs
from router.desk.pipeline import Router
from router.desk.promises import Promises
from router.desk.scheduler import Scheduler
from router.desk.sla import HolidayNotice
from router.desk.survey import survey_routes
from router.desk.work import Units
from router.errors import error_middleware
from router.front_line import build_bot, build_matcher, cache_dir
from router.inbox import (
    Accounts,
    AutoAssigner,
    DatabaseThrottles,
    LoginLimiter,
    Presence,
    agent_routes,
    inbox_routes,
    openapi_route,
)
from router.inbox.keys import ACCOUNTS, AUTO_ASSIGNER, PRESENCE
from router.inbox.reports_web import report_routes
from router.keys import (
    AFTERCARE,
    ASSIST,
    BOT,
    CANNED,
    CHANNELS,
    CLIENT_ADDRESSES,
    CLOCK,
    DATABASE,
    DESK,
    DISPATCHER,
    EVENT_BUS,
    FILES,
    IMAP_POLLERS,
    KNOWLEDGE_PATH,
    METRICS_TOKEN,
    NOTIFIER,
    RELOAD_BOT,
    ROUTER,
    ROUTING_SETTINGS,
    SCHEDULER,
    SEMANTIC,
    SLA_SETTINGS,
    SMTP_RECEIVER,
    TIMEZONE,
)
from router.metrics import KNOWLEDGE_RELOADS
from router.ops import ops_routes
from router.reporting.kb_gaps import keep_gaps_current
from router.settings.routing import RoutingSettings
from router.settings.sla import SlaSettings
from router.storage import Database

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

Lifecycle = Callable[[web.Application], AsyncIterator[None]]
# What a background task of the service runs, until it is cancelled.
BackgroundWork = Callable[[web.Application], Coroutine[Any, Any, None]]


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
    app.cleanup_ctx.extend(_named(name, lifecycle) for name, lifecycle in lifecycles)
    app.add_routes(
        [
            *ops_routes(),
            *agent_routes(),
            *report_routes(),
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
            polling = _background(
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
        ("storage", _storage(config, migrate=migrate)),
        ("event bus", _event_bus()),
        ("presence", _presence()),
        ("core", _core(config, clock, secret)),
        ("scheduler", _scheduling(config)),
        ("alerts", _alerting(config, built.email)),
    ]
    if config.knowledge.reload_seconds:
        reloading = _background("knowledge-reload", _reloading(config.knowledge, cache_dir(config)))
        lifecycles.append(("knowledge reload", reloading))
    lifecycles += [("auto-assignment", _auto_assignment(config)), ("channels", _channels())]
    if built.polling is not None:
        lifecycles.append(("telegram polling", built.polling))
    if built.email is not None:
        lifecycles.append(("mail intake", _mail_intake(config, built.email)))
    if built.webchat is not None or built.telegram is not None:
        lifecycles.append(("typing", _typing_bridge(built.webchat, built.telegram)))
    if built.webchat is not None:
        lifecycles.append(
            (
                "web-chat pruning",
                _pruning(stream, timedelta(days=config.channels.webchat.token_ttl_days)),
            )
        )
    return lifecycles


def _closing_visitors(webchat: WebChatChannel) -> Callable[[web.Application], Awaitable[None]]:
    async def close(_: web.Application) -> None:
        # Open websockets would hold up a graceful shutdown; clients reconnect.
        await webchat.stop()

    return close


def _named(name: str, lifecycle: Lifecycle) -> Lifecycle:
    async def run(app: web.Application) -> AsyncIterator[None]:
        logger.debug("starting %s", name)
        async for _ in lifecycle(app):
            yield
        logger.debug("stopped %s", name)

    return run


def _background(name: str, work: BackgroundWork) -> Lifecycle:
    """A named task that runs ``work`` while the service runs, cancelled at the stop."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work(app), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return running


def _storage(config: Config, *, migrate: bool) -> Lifecycle:
    async def storage(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]
        if migrate and (db.is_sqlite or config.storage.auto_upgrade):
            await db.upgrade()
        yield
        if migrate:
            await db.dispose()

    return storage


def _event_bus() -> Lifecycle:
    """Listen to the other nodes' events (PostgreSQL); nothing to do on one node."""

    async def listening(app: web.Application) -> AsyncIterator[None]:
        bus = app[EVENT_BUS]
        if not isinstance(bus, PgEventBus):
            yield
            return
        bus.start()
        yield
        await bus.stop()

    return listening


def _core(config: Config, clock: Callable[[], datetime], secret: bytes) -> Lifecycle:
    """The bot, the outbox dispatcher, the promises, the router and the desk."""

    async def core(app: web.Application) -> AsyncIterator[None]:
        db, events = app[DATABASE], app[EVENT_BUS]
        bot = _front_line(app, config)
        dispatcher = _dispatcher(app, config, clock)
        units = Units(db=db, outbox=dispatcher, events=events, clock=clock)
        promises = Promises(sla_policies(config))
        handoffs = Handoffs(promises=promises, texts=bot.texts)
        settings, routing = await _editable(app, config, promises, handoffs, clock)

        async def refresh_settings() -> None:
            await settings.refresh()
            await routing.refresh()

        aftercare = Aftercare(
            handoffs=handoffs,
            texts=bot.texts,
            secret=secret,
            public_url=config.server.public_url,
        )
        router = Router(
            units=units,
            bot=bot,
            handoffs=handoffs,
            rules=channel_rules(config),
            aftercare=aftercare,
            reopen_window=timedelta(days=config.inbox.reopen_days),
        )

        # A year whose holidays the calendars lack: said at start and once a day.
        holidays = HolidayNotice(lambda: aftercare.policies, clock)
        await holidays()
        app[BOT] = bot
        app[RELOAD_BOT] = _reloader(config, bot, events)
        app[ROUTER] = router
        app[DISPATCHER] = dispatcher
        app[DESK] = HumanDesk(
            units=units,
            handoffs=handoffs,
            texts=bot.texts,
            aftercare=aftercare,
            team_visibility=config.inbox.team_visibility,
        )
        app[CANNED] = Canned(db=db, routing=lambda: handoffs.routing, clock=clock)
        app[AFTERCARE] = aftercare
        app[ASSIST] = (
            Assist.offline(db, cache=cache_dir(config) / "assist", clock=clock)
            if config.knowledge.semantic
            else Assist(db, encoder=lambda: None, clock=clock)
        )
        app[SLA_SETTINGS] = settings
        app[ROUTING_SETTINGS] = routing
        app[SCHEDULER] = Scheduler(
            units=units,
            promises=promises,
            aftercare=aftercare,
            interval=config.sla.check_seconds,
            # Another node's admin may have changed the promises or the routing.
            before=refresh_settings,
            chores=[
                lambda: keep_gaps_current(units.db, units.clock),
                lambda: forget_full_buckets(units.db),
                holidays,
            ],
        )
        dispatcher.start()
        yield
        await router.close()
        await dispatcher.stop()

    return core


def _front_line(app: web.Application, config: Config) -> Bot:
    """The bot over the configured knowledge base, and which scripts it reads by meaning."""
    bot = build_bot(config)
    reads = bot.matcher.reads_meaning
    logger.info(
        "knowledge base: %d entries from %s (read by meaning: %s)",
        len(bot.matcher),
        config.knowledge.path,
        ", ".join(script for script, on in reads.items() if on) or "none",
    )
    k = config.knowledge
    app[SEMANTIC] = tuple(k.semantic_languages) if k.semantic else ()
    return bot


def _dispatcher(
    app: web.Application, config: Config, clock: Callable[[], datetime]
) -> OutboxDispatcher:
    o, channels = config.outbox, app[CHANNELS]
    return OutboxDispatcher(
        db=app[DATABASE],
        channels=channels,
        events=app[EVENT_BUS],
        policy=retry_policy(config),
        clock=clock,
        poll_interval=o.poll_interval_seconds,
        batch_size=o.batch_size,
        files=app[FILES],
    )


async def _editable(
    app: web.Application,
    config: Config,
    promises: Promises,
    handoffs: Handoffs,
    clock: Callable[[], datetime],
) -> tuple[SlaSettings, RoutingSettings]:
    """The sections admins edit while the service runs; what they saved wins over
    config.yaml."""
    db = app[DATABASE]
    settings = SlaSettings(
        db=db,
        base=config.sla,
        promises=promises,
        clock=clock,
        routing=lambda: routing.current,
    )
    routing = RoutingSettings(
        db=db,
        base=config.routing,
        handoffs=handoffs,
        sla=lambda: settings.current,
        clock=clock,
    )
    await settings.refresh()
    await routing.refresh()
    return settings, routing


def _reloader(config: Config, bot: Bot, events: EventBus) -> Callable[[], Awaitable[None]]:
    """Rebuilds the matcher from the knowledge folder (off the event loop) and swaps it in."""

    async def reload_now() -> None:
        bot.matcher = await asyncio.to_thread(
            partial(build_matcher, config.knowledge, cache=cache_dir(config))
        )
        KNOWLEDGE_RELOADS.labels("ok").inc()
        logger.info("knowledge base reloaded: %d entries", len(bot.matcher))
        await events.publish(KnowledgeReloaded(len(bot.matcher)))

    return reload_now


def _scheduling(config: Config) -> Lifecycle:
    """Promise alerts, follow-ups and reminders when due (``router.desk.scheduler``)."""

    async def scheduling(app: web.Application) -> AsyncIterator[None]:
        scheduler = app[SCHEDULER]
        scheduler.start()
        yield
        await scheduler.stop()

    return scheduling


def _alerting(config: Config, email: EmailChannel | None) -> Lifecycle:
    """Alerts mailed to agents and the supervisor, through the email relay if any."""

    async def alerting(app: web.Application) -> AsyncIterator[None]:
        notifier = Notifier(
            db=app[DATABASE],
            send=email.notify if email is not None else None,
            supervisor=lambda: app[AFTERCARE].policies.supervisor_email,
            zone=config.sla.zone,
            inbox_url=config.server.public_url,
        )
        app[NOTIFIER] = notifier
        async for _ in _background("alert-mail", lambda a: notifier.run(a[EVENT_BUS]))(app):
            yield

    return alerting


def _presence() -> Lifecycle:
    """Inbox presence, shared by the nodes through the database and the event bus."""

    async def sharing(app: web.Application) -> AsyncIterator[None]:
        presence = app[PRESENCE]
        presence.start()
        yield
        await presence.stop()

    return sharing


def _auto_assignment(config: Config) -> Lifecycle:
    async def assigning(app: web.Application) -> AsyncIterator[None]:
        if not config.inbox.auto_assign:
            yield
            return
        assigner = AutoAssigner(
            db=app[DATABASE],
            desk=app[DESK],
            events=app[EVENT_BUS],
            presence=app[PRESENCE],
            capacity=config.inbox.capacity,
            routing=lambda: app[ROUTING_SETTINGS].routing,
        )
        assigner.start()
        app[AUTO_ASSIGNER] = assigner
        yield
        await assigner.stop()

    return assigning


def _channels() -> Lifecycle:
    async def intake(app: web.Application) -> AsyncIterator[None]:
        channels = app[CHANNELS]
        for channel in channels.values():
            await channel.start(app[ROUTER].ingest)
            logger.info("channel %s started", channel.name)
        yield
        for channel in reversed(channels.values()):
            await channel.stop()
            logger.info("channel %s stopped", channel.name)

    return intake


def _mail_intake(config: Config, channel: EmailChannel) -> Lifecycle:
    """The SMTP receiver and the IMAP pollers; they start once the router takes messages.
    IMAP is polled by one node at a time (``Database.while_leader``)."""
    e = config.channels.email

    async def intake(app: web.Application) -> AsyncIterator[None]:
        receiver = build_smtp_receiver(config, channel) if e.smtp.enabled else None
        if receiver is not None:
            await receiver.start()
            app[SMTP_RECEIVER] = receiver
        pollers = build_imap_pollers(config, channel)
        app[IMAP_POLLERS] = pollers
        leading = None
        if pollers:
            leading = asyncio.create_task(
                app[DATABASE].while_leader("imap", _polling(pollers), retry=e.leader_retry_seconds),
                name="imap-leadership",
            )
        yield
        if leading is not None:
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leading
        if receiver is not None:
            await receiver.stop()

    return intake


def _polling(pollers: list[ImapPoller]) -> Callable[[], Awaitable[None]]:
    """Poll IMAP until cancelled (run only on the node that leads)."""

    async def poll() -> None:
        for poller in pollers:
            poller.start()
        try:
            await asyncio.Event().wait()
        finally:
            for poller in pollers:
                await poller.stop()

    return poll


def _reloading(knowledge: KnowledgeConfig, cache: Path) -> BackgroundWork:
    async def reload(app: web.Application) -> None:
        await _reload_knowledge(app[BOT], knowledge, app[EVENT_BUS], cache)

    return reload


async def _reload_knowledge(
    bot: Bot, knowledge: KnowledgeConfig, events: EventBus, cache: Path
) -> None:
    """Swap in a new knowledge base when its files change; a broken one is logged and the
    previous one keeps answering."""
    path = knowledge.path
    seen = fingerprint(path)
    while True:
        await asyncio.sleep(knowledge.reload_seconds)  # polling the files' stat
        current = fingerprint(path)
        if current == seen:
            continue
        seen = current
        try:
            matcher = await asyncio.to_thread(partial(build_matcher, knowledge, cache=cache))
        except Exception as exc:
            if isinstance(exc, KnowledgeError):
                logger.error("knowledge base not reloaded, the previous one stays: %s", exc)
            else:
                logger.exception("knowledge base not reloaded, the previous one stays")
            KNOWLEDGE_RELOADS.labels("failed").inc()
            await events.publish(KnowledgeReloaded(len(bot.matcher), str(exc)))
            continue
        bot.matcher = matcher
        KNOWLEDGE_RELOADS.labels("ok").inc()
        logger.info("knowledge base reloaded: %d entries from %s", len(matcher), path)
        await events.publish(KnowledgeReloaded(len(matcher)))


def _pruning(stream: StoredVisitorStream, older_than: timedelta) -> Lifecycle:
    """Forget the web-chat frames of visitors whose tokens have expired, hourly."""

    async def prune_hourly(_: web.Application) -> None:
        while True:
            # A periodic chore, not synchronisation; the first an hour after start, so a
            # short-lived process (a test, a CLI) never stops in the middle of one.
            await asyncio.sleep(3600)
            try:
                await stream.prune(older_than)
            except Exception:
                logger.exception("web chat: old frames not pruned; next hour again")

    return _background("webchat-prune", prune_hourly)


def _typing_bridge(webchat: WebChatChannel | None, telegram: TelegramChannel | None) -> Lifecycle:
    """Shows customers that an agent is typing (web chat: on the node the visitor is
    connected to; Telegram: from the node the agent typed on, once), and web-chat
    visitors connected here what another node stored for them (events → channel;
    channels never see the bus)."""

    async def forward(app: web.Application) -> None:
        bus = app[EVENT_BUS]
        async with bus.subscribe() as events:
            async for event in events:
                if isinstance(event, AgentTyping):
                    if webchat is not None and event.reply_channel == webchat.name:
                        await webchat.show_typing(event.recipient_id)
                    elif (
                        telegram is not None
                        and event.reply_channel == telegram.name
                        and event.node in ("", bus.node_id)
                    ):
                        await telegram.show_typing(event.recipient_id)
                elif webchat is None:
                    continue
                elif isinstance(event, FrameStored) and event.node != bus.node_id:
                    await webchat.stored_elsewhere(event.visitor_id)
                elif isinstance(event, Resync):
                    await webchat.stored_elsewhere(None)

    return _background("typing-bridge", forward)
