"""The composition root: builds the world from the configuration, and tears it down.

Nothing else constructs the database, the bot, the router or a concrete channel.
Each resource has one cleanup context: what starts it also stops it, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import Bot, BotSettings
from channels.api import ApiChannel, ApiChannelSettings
from channels.base import ChannelAdapter
from channels.email import (
    EmailChannel,
    EmailSettings,
    ImapPoller,
    ImapSettings,
    RelaySettings,
    SmtpReceiver,
)
from channels.http import ClientAddresses
from channels.telegram import TelegramChannel, TelegramSettings
from channels.webchat import WebChatChannel, WebChatSettings
from knowledge import (
    KnowledgeError,
    Matcher,
    Normaliser,
    fingerprint,
    load_folder,
    load_synonyms,
)
from knowledge.semantic import load_encoder
from router.config import Config, KnowledgeConfig
from router.events import AgentTyping, EventBus, KnowledgeReloaded
from router.handoff import HumanDesk, SlaPolicy
from router.inbox import (
    ACCOUNTS,
    ATTACHMENTS,
    CLIENT_ADDRESSES,
    DATABASE,
    DESK,
    EVENT_BUS,
    INBOX_BOT,
    KNOWLEDGE_PATH,
    PRESENCE,
    RELOAD_BOT,
    Accounts,
    AutoAssigner,
    LoginLimiter,
    Presence,
    agent_routes,
    error_middleware,
    inbox_routes,
    openapi_route,
)
from router.outbox import OutboxDispatcher, RetryPolicy
from router.pipeline import ChannelRules, Router
from router.storage import Database
from router.visitor_stream import StoredVisitorStream

__all__ = [
    "AUTO_ASSIGNER",
    "BOT",
    "CHANNELS",
    "DISPATCHER",
    "IMAP_POLLERS",
    "ROUTER",
    "SMTP_RECEIVER",
    "build_bot",
    "build_email",
    "build_telegram",
    "create_app",
    "load_secret",
    "utc_now",
]

logger = logging.getLogger(__name__)

BOT = web.AppKey("bot", Bot)
ROUTER = web.AppKey("router", Router)
DISPATCHER = web.AppKey("dispatcher", OutboxDispatcher)
CHANNELS = web.AppKey("channels", dict[str, ChannelAdapter])
SMTP_RECEIVER = web.AppKey("smtp_receiver", SmtpReceiver)
IMAP_POLLERS = web.AppKey("imap_pollers", list[ImapPoller])
AUTO_ASSIGNER = web.AppKey("auto_assigner", AutoAssigner)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_matcher(
    knowledge: KnowledgeConfig,
    *,
    path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Matcher:
    """The matcher over the knowledge base at ``path`` (default: the configured one)."""
    path = path or knowledge.path
    encoder = load_encoder(knowledge.semantic_model) if knowledge.semantic else None
    return Matcher(
        load_folder(path),
        normaliser=Normaliser(load_synonyms(path)),
        progress=progress,
        encoder=encoder,
    )


def build_bot(config: Config, *, progress: Callable[[int, int], None] | None = None) -> Bot:
    """The knowledge base and the bot, from the config (also used by ``relaydesk kb``)."""
    b = config.bot
    return Bot(
        matcher=build_matcher(config.knowledge, progress=progress),
        settings=BotSettings(
            answer_threshold=b.answer_threshold,
            clarify_threshold=b.clarify_threshold,
            clarify_margin=b.clarify_margin,
            clarify_spread=b.clarify_spread,
            max_choices=b.max_choices,
            max_misses=b.max_misses,
        ),
    )


def build_telegram(config: Config) -> TelegramChannel:
    t = config.channels.telegram
    return TelegramChannel(
        settings=TelegramSettings(
            token=t.token,
            attachments_dir=config.server.data_dir / "attachments",
            mode=t.mode,
            webhook_path=t.webhook_path,
            webhook_secret=t.webhook_secret,
            api_base_url=t.api_base_url,
            allow_groups=t.allow_groups,
            per_chat_interval=t.per_chat_interval_seconds,
            per_second=t.messages_per_second,
            max_file_bytes=t.max_file_mb * 1024 * 1024,
            poll_timeout=t.poll_timeout_seconds,
        )
    )


def build_email(config: Config) -> EmailChannel:
    e = config.channels.email
    r = e.relay
    return EmailChannel(
        settings=EmailSettings(
            addresses=tuple(e.addresses),
            attachments_dir=config.server.data_dir / "attachments" / "email",
            secret=load_secret(config),
            relay=RelaySettings(
                host=r.host,
                port=r.port,
                security=r.security,
                username=r.username,
                password=r.password,
                timeout=r.timeout_seconds,
                verify=r.verify_certificate,
            ),
            from_name=e.from_name,
            max_attachment_bytes=int(e.max_attachment_mb * 1024 * 1024),
            thread_window=e.thread_window_hours * 3600,
        )
    )


def _channel_rules(config: Config) -> dict[str, ChannelRules]:
    e = config.channels.email
    if not e.enabled:
        return {}
    # Email is answered once and only when sure: no quick replies to press, and
    # every extra mail to a customer (or to an auto-responder) costs more than a chat line.
    return {
        "email": ChannelRules(
            min_answer_score=e.answer_threshold,
            clarify=False,
            answer_once=True,
            auto_reply_limit=e.auto_replies_per_hour,
        )
    }


def _polling(pollers: list[ImapPoller]) -> Callable[[], Awaitable[None]]:
    """Poll IMAP until cancelled (run only on the node that leads, see ``while_leader``)."""

    async def poll() -> None:
        for poller in pollers:
            poller.start()
        try:
            await asyncio.Event().wait()
        finally:
            for poller in pollers:
                await poller.stop()

    return poll


def _mail_intake(
    config: Config, channel: EmailChannel
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The SMTP receiver and the IMAP pollers; they start once the router takes messages."""
    e = config.channels.email

    async def intake(app: web.Application) -> AsyncIterator[None]:
        receiver: SmtpReceiver | None = None
        if e.smtp.enabled:
            receiver = SmtpReceiver(
                channel=channel,
                host=e.smtp.host,
                port=e.smtp.port,
                max_message_bytes=int(e.smtp.max_message_mb * 1024 * 1024),
            )
            await receiver.start()
            app[SMTP_RECEIVER] = receiver
        pollers = [
            ImapPoller(
                channel=channel,
                settings=ImapSettings(
                    host=a.host,
                    port=a.port,
                    security=a.security,
                    verify=a.verify_certificate,
                    username=a.username,
                    password=a.password,
                    mailboxes=tuple(a.mailboxes),
                    processed_folder=a.processed_folder or None,
                    poll_seconds=a.poll_seconds,
                    idle=a.idle,
                    max_message_bytes=int(a.max_message_mb * 1024 * 1024),
                    # One state file per account: UIDs are per server and mailbox.
                    state_path=config.server.data_dir
                    / f"imap-state-{_file_safe(a.username)}-{_file_safe(a.host)}.json",
                ),
            )
            for a in e.imap
        ]
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


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:80]


def load_secret(config: Config) -> bytes:
    """The configured secret, else one generated once and kept in ``data_dir``."""
    if config.server.secret_key:
        return config.server.secret_key.encode()
    path = config.server.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    logger.info("generated a web-chat secret key in %s", path)
    return key.encode()


def create_app(
    config: Config,
    *,
    extra_channels: Sequence[ChannelAdapter] = (),
    clock: Callable[[], datetime] = utc_now,
    database: Database | None = None,
) -> web.Application:
    """The whole service as one aiohttp application.

    ``extra_channels`` adds channels beside the configured ones (tests use the
    in-memory channel); ``database`` replaces the configured store (tests).
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=1024**2)
    # The engine connects on first use; the storage context below migrates and disposes it.
    db = database or Database(config.storage.url, echo=config.storage.echo)
    addresses = ClientAddresses(config.server.trusted_proxies)
    app[CLIENT_ADDRESSES] = addresses
    channels: dict[str, ChannelAdapter] = {}
    if config.channels.webchat.enabled:
        wc = config.channels.webchat
        stream = StoredVisitorStream(db=db, clock=clock)
        app.cleanup_ctx.append(_pruning(stream, timedelta(days=wc.token_ttl_days)))
        webchat = WebChatChannel(
            settings=WebChatSettings(
                secret=load_secret(config),
                max_text_chars=wc.max_text_chars,
                burst=wc.rate_limit.burst,
                per_minute=wc.rate_limit.per_minute,
                token_ttl_seconds=wc.token_ttl_days * 86400,
                history_frames=wc.history_frames,
                title=wc.title,
                new_visitors_per_minute=wc.new_visitors_per_minute,
                address_messages_per_minute=wc.address_messages_per_minute,
                identity_secret=wc.identity_secret,
            ),
            stream=stream,
            addresses=addresses,
        )
        channels[webchat.name] = webchat
        app.add_routes(webchat.routes())

        async def close_visitors(_: web.Application) -> None:
            # Open websockets would hold up a graceful shutdown; clients reconnect.
            await webchat.stop()

        app.on_shutdown.append(close_visitors)
        app.cleanup_ctx.append(_typing_bridge(webchat))
    if config.channels.telegram.enabled:
        telegram = build_telegram(config)
        channels[telegram.name] = telegram
        app.add_routes(telegram.routes())
    email: EmailChannel | None = None
    if config.channels.email.enabled:
        email = build_email(config)
        channels[email.name] = email
    for name, bridge in config.channels.api.items():
        if bridge.enabled:
            api_channel = ApiChannel(
                settings=ApiChannelSettings(
                    name=name,
                    secret=bridge.secret,
                    outbound_url=bridge.outbound_url,
                    max_text_chars=bridge.max_text_chars,
                    timestamp_tolerance=bridge.timestamp_tolerance_seconds,
                )
            )
            channels[name] = api_channel
            app.add_routes(api_channel.routes())
    for channel in extra_channels:
        channels[channel.name] = channel
    app[CHANNELS] = channels
    app[ATTACHMENTS] = config.server.data_dir / "attachments"
    app[KNOWLEDGE_PATH] = config.knowledge.path
    app[PRESENCE] = Presence()
    app[EVENT_BUS] = EventBus()

    async def storage(app: web.Application) -> AsyncIterator[None]:
        if database is None and (db.is_sqlite or config.storage.auto_upgrade):
            await db.upgrade()
        app[DATABASE] = db
        app[ACCOUNTS] = Accounts(
            db=db,
            clock=clock,
            session_hours=config.inbox.session_hours,
            limiter=LoginLimiter(attempts=config.inbox.login_attempts),
            secure_cookies=config.inbox.secure_cookies,
        )
        yield
        if database is None:
            await db.dispose()

    async def core(app: web.Application) -> AsyncIterator[None]:
        bot = build_bot(config)
        logger.info(
            "knowledge base: %d entries from %s%s",
            len(bot.matcher),
            config.knowledge.path,
            " (with the semantic re-ranker)" if bot.matcher.semantic else "",
        )
        o = config.outbox
        dispatcher = OutboxDispatcher(
            db=app[DATABASE],
            channels=channels,
            events=app[EVENT_BUS],
            policy=RetryPolicy(
                give_up_after=o.give_up_after_hours * 3600,
                max_attempts=o.max_attempts,
                backoff_base=o.backoff_base_seconds,
                backoff_max=o.backoff_max_seconds,
                lease=o.lease_seconds,
            ),
            clock=clock,
            poll_interval=o.poll_interval_seconds,
            batch_size=o.batch_size,
        )
        sla = SlaPolicy.from_minutes(config.sla.first_response_minutes, config.sla.zone)
        router = Router(
            db=app[DATABASE],
            bot=bot,
            events=app[EVENT_BUS],
            sla=sla,
            outbox=dispatcher,
            clock=clock,
            rules=_channel_rules(config),
        )
        app[BOT] = bot
        app[INBOX_BOT] = bot

        async def reload_now() -> None:
            bot.matcher = await asyncio.to_thread(build_matcher, config.knowledge)
            logger.info("knowledge base reloaded: %d entries", len(bot.matcher))
            await app[EVENT_BUS].publish(KnowledgeReloaded(len(bot.matcher)))

        app[RELOAD_BOT] = reload_now
        app[ROUTER] = router
        app[DISPATCHER] = dispatcher
        app[DESK] = HumanDesk(
            db=app[DATABASE],
            events=app[EVENT_BUS],
            texts=bot.texts,
            outbox=dispatcher,
            clock=clock,
            sla=sla,
        )
        dispatcher.start()
        assigner: AutoAssigner | None = None
        if config.inbox.auto_assign:
            assigner = AutoAssigner(
                db=app[DATABASE],
                desk=app[DESK],
                events=app[EVENT_BUS],
                presence=app[PRESENCE],
                capacity=config.inbox.capacity,
            )
            assigner.start()
            app[AUTO_ASSIGNER] = assigner
        reload = None
        if config.knowledge.reload_seconds:
            reload = asyncio.create_task(
                _reload_knowledge(bot, config.knowledge, app[EVENT_BUS]),
                name="knowledge-reload",
            )
        yield
        if reload is not None:
            reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reload
        if assigner is not None:
            await assigner.stop()
        await router.close()
        await dispatcher.stop()

    async def intake(app: web.Application) -> AsyncIterator[None]:
        for channel in channels.values():
            await channel.start(app[ROUTER].ingest)
            logger.info("channel %s started", channel.name)
        yield
        for channel in reversed(channels.values()):
            await channel.stop()
            logger.info("channel %s stopped", channel.name)

    app.cleanup_ctx[:0] = [storage, core, intake]
    if email is not None:
        app.cleanup_ctx.insert(3, _mail_intake(config, email))
    app.add_routes(
        [
            web.get("/", _home),
            web.get("/healthz", _health),
            web.get("/metrics", _metrics),
            *agent_routes(),
            *inbox_routes(),
            openapi_route(),
        ]
    )
    return app


async def _reload_knowledge(bot: Bot, knowledge: KnowledgeConfig, events: EventBus) -> None:
    """Swap in a new knowledge base when its files change; a broken one is logged and the
    previous one keeps answering."""
    path = knowledge.path
    seen = fingerprint(path)
    while True:
        await asyncio.sleep(
            knowledge.reload_seconds
        )  # polling the files' stat, not waiting for work
        current = fingerprint(path)
        if current == seen:
            continue
        seen = current
        try:
            matcher = await asyncio.to_thread(build_matcher, knowledge)
        except Exception as exc:
            if isinstance(exc, KnowledgeError):
                logger.error("knowledge base not reloaded, the previous one stays: %s", exc)
            else:
                logger.exception("knowledge base not reloaded, the previous one stays")
            await events.publish(KnowledgeReloaded(len(bot.matcher), str(exc)))
            continue
        bot.matcher = matcher
        logger.info("knowledge base reloaded: %d entries from %s", len(matcher), path)
        await events.publish(KnowledgeReloaded(len(matcher)))


def _pruning(
    stream: StoredVisitorStream, older_than: timedelta
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Forget the web-chat frames of visitors whose tokens have expired, hourly."""

    async def prune_hourly() -> None:
        while True:
            # A periodic chore, not synchronisation; the first an hour after start, so a
            # short-lived process (a test, a CLI) never stops in the middle of one.
            await asyncio.sleep(3600)
            try:
                await stream.prune(older_than)
            except Exception:
                logger.exception("web chat: old frames not pruned; next hour again")

    async def pruning(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(prune_hourly(), name="webchat-prune")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return pruning


def _typing_bridge(
    webchat: WebChatChannel,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Shows web-chat visitors that an agent is typing (events → channel; channels never
    see the bus)."""

    async def bridge(app: web.Application) -> AsyncIterator[None]:
        async def forward() -> None:
            async with app[EVENT_BUS].subscribe() as events:
                async for event in events:
                    if isinstance(event, AgentTyping) and event.reply_channel == webchat.name:
                        await webchat.show_typing(event.recipient_id)

        task = asyncio.create_task(forward(), name="webchat-typing-bridge")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return bridge


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
