"""The service's lifecycles: each starts one part and, after its ``yield``, stops it
(``router.app`` lists them in order). The core's are in ``router.core``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import Bot
from channels.email import EmailChannel, ImapPoller
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from knowledge import KnowledgeError, fingerprint
from router.builders import (
    build_imap_pollers,
    build_smtp_receiver,
)
from router.config import Config, KnowledgeConfig
from router.delivery.events import AgentTyping, EventBus, FrameStored, KnowledgeReloaded, Resync
from router.delivery.notify import Notifier
from router.delivery.pg_events import PgEventBus
from router.delivery.visitor_stream import StoredVisitorStream
from router.front_line import build_matcher
from router.inbox import (
    AutoAssigner,
)
from router.inbox.keys import AUTO_ASSIGNER, PRESENCE
from router.keys import (
    AFTERCARE,
    BOT,
    CHANNELS,
    DATABASE,
    DESK,
    EVENT_BUS,
    IMAP_POLLERS,
    NOTIFIER,
    ROUTER,
    ROUTING_SETTINGS,
    SCHEDULER,
    SMTP_RECEIVER,
)
from router.metrics import KNOWLEDGE_RELOADS

__all__ = [
    "BackgroundWork",
    "Lifecycle",
    "alerting",
    "auto_assignment",
    "background",
    "channel_intake",
    "event_bus",
    "mail_intake",
    "named",
    "polling",
    "presence",
    "pruning",
    "reload_knowledge",
    "reloading",
    "scheduling",
    "storage",
    "typing_bridge",
]

logger = logging.getLogger(__name__)

Lifecycle = Callable[[web.Application], AsyncIterator[None]]
# What a background task of the service runs, until it is cancelled.
BackgroundWork = Callable[[web.Application], Coroutine[Any, Any, None]]


def named(name: str, lifecycle: Lifecycle) -> Lifecycle:
    async def run(app: web.Application) -> AsyncIterator[None]:
        logger.debug("starting %s", name)
        async for _ in lifecycle(app):
            yield
        logger.debug("stopped %s", name)

    return run


def background(name: str, work: BackgroundWork) -> Lifecycle:
    """A named task that runs ``work`` while the service runs, cancelled at the stop."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work(app), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return running


def storage(config: Config, *, migrate: bool) -> Lifecycle:
    async def storage(app: web.Application) -> AsyncIterator[None]:
        db = app[DATABASE]
        if migrate and (db.is_sqlite or config.storage.auto_upgrade):
            await db.upgrade()
        yield
        if migrate:
            await db.dispose()

    return storage


def event_bus() -> Lifecycle:
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


def scheduling(config: Config) -> Lifecycle:
    """Promise alerts, follow-ups and reminders when due (``router.desk.scheduler``)."""

    async def scheduling(app: web.Application) -> AsyncIterator[None]:
        scheduler = app[SCHEDULER]
        scheduler.start()
        yield
        await scheduler.stop()

    return scheduling


def alerting(config: Config, email: EmailChannel | None) -> Lifecycle:
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
        async for _ in background("alert-mail", lambda a: notifier.run(a[EVENT_BUS]))(app):
            yield

    return alerting


def presence() -> Lifecycle:
    """Inbox presence, shared by the nodes through the database and the event bus."""

    async def sharing(app: web.Application) -> AsyncIterator[None]:
        presence = app[PRESENCE]
        presence.start()
        yield
        await presence.stop()

    return sharing


def auto_assignment(config: Config) -> Lifecycle:
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


def channel_intake() -> Lifecycle:
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


def mail_intake(config: Config, channel: EmailChannel) -> Lifecycle:
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
                app[DATABASE].while_leader("imap", polling(pollers), retry=e.leader_retry_seconds),
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


def polling(pollers: list[ImapPoller]) -> Callable[[], Awaitable[None]]:
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


def reloading(knowledge: KnowledgeConfig, cache: Path) -> BackgroundWork:
    async def reload(app: web.Application) -> None:
        await reload_knowledge(app[BOT], knowledge, app[EVENT_BUS], cache)

    return reload


async def reload_knowledge(
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


def pruning(stream: StoredVisitorStream, older_than: timedelta) -> Lifecycle:
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

    return background("webchat-prune", prune_hourly)


def typing_bridge(webchat: WebChatChannel | None, telegram: TelegramChannel | None) -> Lifecycle:
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

    return background("typing-bridge", forward)
