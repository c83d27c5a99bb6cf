"""The core lifecycle: the front line (bot and ingest pipeline), the human desk, the
outbox dispatcher, the editable settings and the knowledge reloader, built once the
storage and the event bus are up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial

from aiohttp import web

from bot import Bot
from router.builders import (
    channel_rules,
    retry_policy,
    sla_policies,
)
from router.config import Config
from router.delivery.events import EventBus, KnowledgeReloaded
from router.delivery.outbox import OutboxDispatcher
from router.delivery.shared_limits import forget_full_buckets
from router.desk.actions import HumanDesk
from router.desk.aftercare import Aftercare
from router.desk.assist import Assist
from router.desk.canned import Canned
from router.desk.handoff import Handoffs
from router.desk.pipeline import Router
from router.desk.promises import Promises
from router.desk.scheduler import Scheduler
from router.desk.sla import HolidayNotice
from router.desk.work import Units
from router.front_line import build_bot, build_matcher, cache_dir
from router.keys import (
    AFTERCARE,
    ASSIST,
    BOT,
    CANNED,
    CHANNELS,
    DATABASE,
    DESK,
    DISPATCHER,
    EVENT_BUS,
    FILES,
    RELEARN,
    RELOAD_BOT,
    ROUTER,
    ROUTING_SETTINGS,
    SCHEDULER,
    SEMANTIC,
    SLA_SETTINGS,
)
from router.lifecycles import Lifecycle
from router.metrics import KNOWLEDGE_RELOADS
from router.reporting.kb_gaps import keep_gaps_current
from router.settings.routing import RoutingSettings
from router.settings.sla import SlaSettings

__all__ = ["Relearning", "core"]

logger = logging.getLogger(__name__)


def core(config: Config, clock: Callable[[], datetime], secret: bytes) -> Lifecycle:
    """The bot, the outbox dispatcher, the promises, the router and the desk."""

    async def core(app: web.Application) -> AsyncIterator[None]:
        db, events = app[DATABASE], app[EVENT_BUS]
        bot = _front_line(app, config)
        dispatcher = _outbox_dispatcher(app, config, clock)
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
        relearning = Relearning(config, bot, events)
        app[RELOAD_BOT] = relearning.now
        app[RELEARN] = relearning.soon
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
        await relearning.stop()
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


def _outbox_dispatcher(
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


class Relearning:
    """Rebuilds the matcher from the knowledge folder off the event loop and swaps it in:
    at once (``now``), or in the background (``soon``), as an agent's Save as FAQ, a
    published gap or an accepted word asks. A refit takes seconds (about 20 on two cores
    for the demo knowledge base: the Chinese entry models are cross-fitted five times),
    and nobody should wait on a click for it. One reload at a time; asked again while one
    runs, one more follows it. A knowledge base that does not load is logged and the
    previous one keeps answering."""

    def __init__(self, config: Config, bot: Bot, events: EventBus) -> None:
        self._config = config
        self._bot = bot
        self._events = events
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def now(self) -> None:
        async with self._lock:
            self._bot.matcher = await asyncio.to_thread(
                partial(build_matcher, self._config.knowledge, cache=cache_dir(self._config))
            )
        KNOWLEDGE_RELOADS.labels("ok").inc()
        logger.info("knowledge base reloaded: %d entries", len(self._bot.matcher))
        await self._events.publish(KnowledgeReloaded(len(self._bot.matcher)))

    def soon(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._relearn(), name="knowledge-relearn")

    async def _relearn(self) -> None:
        while True:
            self._again = False
            try:
                await self.now()
            except Exception as exc:
                logger.exception("knowledge base not reloaded, the previous one stays")
                KNOWLEDGE_RELOADS.labels("failed").inc()
                await self._events.publish(KnowledgeReloaded(len(self._bot.matcher), str(exc)))
            if not self._again:
                return

    async def settled(self) -> None:
        """Returns once no relearn is running or asked for."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
