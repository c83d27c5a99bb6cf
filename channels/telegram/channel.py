"""The Telegram channel, on python-telegram-bot.

PTB's ``Application`` runs without a web server or updater of its own: in
webhook mode our aiohttp app receives updates on one route, in polling mode a
task of ours calls ``getUpdates``. Either way each update goes through
``Application.process_update`` to our handler, which turns it into an
``InboundMessage`` and awaits the router. Telegram is told the update was
received (200, or the next ``getUpdates`` offset) only after ingest committed.
PTB types never leave this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import logging
import os
import re
from collections import OrderedDict
from datetime import UTC
from pathlib import Path

from aiohttp import web
from telegram import (
    CallbackQuery,
    Message,
    Update,
)
from telegram.error import (
    NetworkError,
)
from telegram.ext import Application, ContextTypes, TypeHandler

from channels.base import (
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    SenderIdentity,
)
from channels.settings import check_usable
from channels.telegram.files import received_files
from channels.telegram.flood import FloodControl
from channels.telegram.sending import Sender
from channels.telegram.settings import TelegramSettings

__all__ = ["TelegramChannel"]

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class _UpdateFailed(Exception):
    """Ingest failed for an update: Telegram must deliver it again."""


class TelegramChannel:
    """Customers chatting with the support bot on Telegram."""

    # The Bot API has no idempotency key: a message sent twice shows twice.
    deduplicates = False

    def __init__(
        self, *, settings: TelegramSettings, attachments_dir: Path, poll_on_start: bool = True
    ) -> None:
        """``attachments_dir``: where customers' files go (under ``telegram/``).
        ``poll_on_start`` (polling mode): start() begins polling itself; False leaves
        ``poll()`` to the owner (RelayDesk polls on the node that holds the leader lock)."""
        check_usable(settings, "Telegram")
        self._settings = settings
        self._attachments_dir = attachments_dir
        self._poll_on_start = poll_on_start
        base = settings.api_base_url.rstrip("/")
        self._app = (
            Application.builder()
            .token(settings.token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .updater(None)
            .build()
        )
        self._app.add_handler(TypeHandler(Update, self._on_update))
        self._on_message: InboundHandler | None = None
        self._failures: dict[int, BaseException] = {}
        self._seen_updates: OrderedDict[int, None] = OrderedDict()
        self._sender = Sender(
            self._app.bot,
            FloodControl(
                per_chat_interval=settings.per_chat_interval_seconds,
                per_second=settings.messages_per_second,
            ),
        )
        self._poller: asyncio.Task[None] | None = None
        self._poll_lock: int | None = None
        self._healthy = False
        self._detail = "not started"

    # -- the adapter protocol ------------------------------------------------------

    @property
    def name(self) -> str:
        return CHANNEL

    async def start(self, on_message: InboundHandler) -> None:
        self._on_message = on_message
        await self._app.initialize()  # getMe: a wrong token fails here, loudly
        self._healthy, self._detail = True, f"@{self._app.bot.username} ({self._settings.mode})"
        if self._settings.mode == "polling" and self._poll_on_start:
            self._poller = asyncio.create_task(self.poll(), name="telegram-polling")

    async def poll(self) -> None:
        """Take updates with getUpdates until cancelled (polling mode). Telegram allows one
        poller per bot: a lock file keeps a second process on this machine out (it returns
        at once, and only sends); across machines, run this on one node at a time."""
        if not self._take_poll_lock():
            self._detail = f"@{self._app.bot.username} (polling), another process polls"
            logger.warning("telegram: another process is polling; this one only sends")
            return
        try:
            await self._app.bot.delete_webhook()
            self._detail = f"@{self._app.bot.username} (polling, this process polls)"
            await self._poll()
        finally:
            if self._poll_lock is not None:
                os.close(self._poll_lock)
                self._poll_lock = None

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._poll_lock is not None:
            os.close(self._poll_lock)
            self._poll_lock = None
        if self._healthy:
            await self._app.shutdown()
        self._on_message = None
        self._healthy, self._detail = False, "stopped"

    def health(self) -> ChannelHealth:
        return ChannelHealth(ok=self._healthy, detail=self._detail)

    async def send(self, outbound: OutboundMessage) -> None:
        await self._sender.send(outbound)

    async def show_typing(self, recipient_id: str) -> None:
        await self._sender.show_typing(recipient_id)

    # -- receiving -----------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        if self._settings.mode != "webhook":
            return []
        return [web.post(self._settings.webhook_path, self._webhook)]

    async def set_webhook(self, url: str) -> None:
        """Register ``url`` (ending in the webhook path) and the secret with Telegram."""
        async with self._app.bot:
            await self._app.bot.set_webhook(
                url,
                secret_token=self._settings.webhook_secret,
                allowed_updates=_ALLOWED_UPDATES,
            )

    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._settings.webhook_secret.encode()):
            logger.warning("telegram webhook: wrong or missing secret from %s", request.remote)
            raise web.HTTPForbidden(text="wrong secret token")
        try:
            data = await request.json()
            update = Update.de_json(data, self._app.bot)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise web.HTTPBadRequest(text=f"not a Telegram update: {type(exc).__name__}") from exc
        if update is None:
            raise web.HTTPBadRequest(text="not a Telegram update")
        try:
            await self._process(update)
        except _UpdateFailed as exc:
            # Telegram delivers it again later; dedup makes that harmless.
            raise web.HTTPServiceUnavailable(text="not stored; send again") from exc
        return web.Response(text="ok")

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self._app.bot.get_updates(
                    offset=offset,
                    timeout=self._settings.poll_timeout_seconds,
                    allowed_updates=_ALLOWED_UPDATES,
                )
            except NetworkError as exc:
                failures += 1
                logger.warning("telegram polling: %s (attempt %s)", exc, failures)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))  # backoff, not sync
                continue
            failures = 0
            for update in updates:
                try:
                    await self._process(update)
                except _UpdateFailed:
                    # Leave the offset here: the next getUpdates asks for this update again.
                    await asyncio.sleep(1.0)
                    break
                # Only now does Telegram learn we have it (on the next getUpdates).
                offset = update.update_id + 1

    async def _process(self, update: Update) -> None:
        if update.update_id in self._seen_updates:
            return
        await self._app.process_update(update)
        failure = self._failures.pop(update.update_id, None)
        if failure is not None:
            raise _UpdateFailed(str(failure)) from failure
        self._seen_updates[update.update_id] = None
        while len(self._seen_updates) > 10_000:
            self._seen_updates.popitem(last=False)

    async def _on_update(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """PTB's handler: any failure is kept for ``_process``, which PTB would swallow."""
        try:
            if update.callback_query is not None:
                await self._on_button(update.callback_query)
            else:
                await self._on_chat_message(update)
        except Exception as exc:
            logger.exception("telegram: update %s not ingested", update.update_id)
            self._failures[update.update_id] = exc

    async def _on_chat_message(self, update: Update) -> None:
        message = update.message or update.edited_message
        if message is None or message.from_user is None:
            return
        if message.chat.type != "private" and not self._settings.allow_groups:
            return
        text = message.text or message.caption or ""
        command, extras = None, _language_hint(message)
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            word = word.split("@", 1)[0].lower()
            if word in ("start", "human"):
                command = word
                if word == "start" and rest.strip():
                    extras["start_payload"] = rest.strip()[:200]
        if message.contact is not None:
            contact = message.contact
            extras["phone"] = contact.phone_number
            text = text or f"[contact] {contact.first_name} {contact.phone_number}"
        attachments = await received_files(
            message, self._attachments_dir, self._settings.max_file_bytes
        )
        await self._ingest(
            InboundMessage(
                external_id=f"{message.chat.id}:{message.message_id}",
                address=ChannelAddress(channel=CHANNEL, recipient_id=str(message.chat.id)),
                sender=SenderIdentity(
                    channel=CHANNEL,
                    external_id=str(message.from_user.id),
                    display_name=message.from_user.full_name,
                ),
                text=text,
                attachments=attachments,
                sent_at=message.date.astimezone(UTC),
                extras=extras,
                edit=update.edited_message is not None,
                command=command,
            )
        )

    async def _on_button(self, query: CallbackQuery) -> None:
        message = query.message
        if not isinstance(message, Message) or not query.data:
            await query.answer()
            return
        label = next(
            (
                button.text
                for row in (message.reply_markup.inline_keyboard if message.reply_markup else ())
                for button in row
                if button.callback_data == query.data
            ),
            query.data,
        )
        await self._ingest(
            InboundMessage(
                external_id=f"cb:{query.id}",
                address=ChannelAddress(channel=CHANNEL, recipient_id=str(message.chat.id)),
                sender=SenderIdentity(
                    channel=CHANNEL,
                    external_id=str(query.from_user.id),
                    display_name=query.from_user.full_name,
                ),
                text=label,
                extras={"choice": str(query.data)},
            )
        )
        # Stops the button's spinner; the chosen answer arrives as a message.
        await query.answer()

    async def _ingest(self, inbound: InboundMessage) -> None:
        if self._on_message is None:
            raise RuntimeError("the Telegram channel is not started")
        await self._on_message(inbound)

    def _take_poll_lock(self) -> bool:
        """One poller per bot on this machine: Telegram allows only one getUpdates at a time."""
        self._attachments_dir.mkdir(parents=True, exist_ok=True)
        path = self._attachments_dir / "telegram-polling.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._poll_lock = descriptor
        return True


def _language_hint(message: Message) -> dict[str, str]:
    code = (message.from_user.language_code or "") if message.from_user else ""
    if not code:
        return {}
    return {"language": "zh" if code.lower().startswith("zh") else "en"}
