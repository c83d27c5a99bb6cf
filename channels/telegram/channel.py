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
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientUnreachable,
    SenderIdentity,
    TransientDeliveryError,
)
from channels.telegram.flood import FloodControl
from channels.telegram.split import split_text

__all__ = ["TelegramChannel", "TelegramSettings"]

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str
    attachments_dir: Path
    mode: str = "webhook"
    webhook_path: str = "/telegram/webhook"
    webhook_secret: str = ""
    api_base_url: str = "https://api.telegram.org"
    allow_groups: bool = False
    per_chat_interval: float = 1.0
    per_second: float = 30.0
    max_file_bytes: int = 20 * 1024 * 1024
    poll_timeout: int = 30
    # Polling mode: start() begins polling itself; False leaves ``poll()`` to the owner
    # (RelayDesk runs it on the node that holds the leader lock).
    poll_on_start: bool = True

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("the Telegram channel needs a bot token")
        if self.mode not in ("webhook", "polling"):
            raise ValueError("mode must be webhook or polling")
        if self.mode == "webhook" and len(self.webhook_secret) < 16:
            raise ValueError("webhook mode needs a webhook_secret of at least 16 characters")


class _UpdateFailed(Exception):
    """Ingest failed for an update: Telegram must deliver it again."""


# Telegram shows a chat action for 5 seconds; renewing it every 4 keeps it steady.
TYPING_EVERY = 4.0
# The largest photo the Bot API takes as a photo; larger ones go as documents.
PHOTO_LIMIT = 10 * 1024 * 1024


class TelegramChannel:
    """Customers chatting with the support bot on Telegram."""

    # The Bot API has no idempotency key: a message sent twice shows twice.
    deduplicates = False

    def __init__(self, *, settings: TelegramSettings) -> None:
        self._settings = settings
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
        # Parts of a split answer already delivered, by idempotency key: a retry
        # after a failure half-way sends only the rest.
        self._sent_parts: OrderedDict[str, int] = OrderedDict()
        self._flood = FloodControl(
            per_chat_interval=settings.per_chat_interval, per_second=settings.per_second
        )
        # When "typing" was last shown in each chat (it shows for 5 s): at most one
        # chat action per chat every TYPING_EVERY seconds, whoever asks.
        self._typing_shown: OrderedDict[int, float] = OrderedDict()
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
        if self._settings.mode == "polling" and self._settings.poll_on_start:
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
        """Send in parts of at most 4096 characters, choices as buttons under the last,
        then each attached file (photos as photos); a retry resumes after the last part
        that got through."""
        chat_id = int(outbound.address.recipient_id)
        parts = split_text(outbound.text) if outbound.text.strip() or outbound.choices else []
        markup = None
        if outbound.choices:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(c.label, callback_data=c.id[:64])] for c in outbound.choices]
            )
        done = self._sent_parts.get(outbound.idempotency_key, 0)
        for index in range(done, len(parts) + len(outbound.attachments)):
            await self._flood.wait(chat_id)
            try:
                if index < len(parts):
                    await self._app.bot.send_message(
                        chat_id,
                        parts[index],
                        reply_markup=markup if index == len(parts) - 1 else None,
                    )
                else:
                    await self._send_file(chat_id, outbound.attachments[index - len(parts)])
            except RetryAfter as exc:
                seconds = _retry_after(exc)
                self._flood.hold(chat_id, seconds)
                raise TransientDeliveryError(
                    f"Telegram flood control: retry after {seconds:.0f} s", retry_after=seconds
                ) from exc
            except Forbidden as exc:
                raise RecipientUnreachable(f"Telegram refused: {exc.message}") from exc
            except BadRequest as exc:
                raise PermanentDeliveryError(
                    f"Telegram rejected the message: {exc.message}"
                ) from exc
            except NetworkError as exc:  # includes TimedOut
                raise TransientDeliveryError(f"Telegram unreachable: {exc.message}") from exc
            except TelegramError as exc:
                raise TransientDeliveryError(f"Telegram error: {exc.message}") from exc
            self._sent_parts[outbound.idempotency_key] = index + 1
            self._sent_parts.move_to_end(outbound.idempotency_key)
            while len(self._sent_parts) > 10_000:
                self._sent_parts.popitem(last=False)

    async def _send_file(self, chat_id: int, attachment: OutboundAttachment) -> None:
        document = InputFile(await attachment.read(), filename=attachment.name)
        # Telegram shows photos up to 10 MB inline (re-encoded); anything else, and a GIF
        # (which it would turn into a silent video), goes as the file itself.
        photo = attachment.is_image and attachment.content_type != "image/gif"
        if photo and attachment.size <= PHOTO_LIMIT:
            await self._app.bot.send_photo(chat_id, document)
        else:
            await self._app.bot.send_document(chat_id, document)

    async def show_typing(self, recipient_id: str) -> None:
        """Show "typing…" in the customer's chat while an agent writes; throttled, and
        never an error (a chat action is a courtesy, not a message)."""
        try:
            chat_id = int(recipient_id)
        except ValueError:
            return
        now = asyncio.get_running_loop().time()
        if now - self._typing_shown.get(chat_id, -TYPING_EVERY) < TYPING_EVERY:
            return
        self._typing_shown[chat_id] = now
        self._typing_shown.move_to_end(chat_id)
        while len(self._typing_shown) > 10_000:
            self._typing_shown.popitem(last=False)
        try:
            await self._app.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:
            logger.info("telegram: typing not shown in chat %s: %s", chat_id, exc.message)

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
                    timeout=self._settings.poll_timeout,
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
        attachments = await self._attachments(message)
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

    async def _attachments(self, message: Message) -> tuple[Attachment, ...]:
        found: list[tuple[Any, str, str]] = []
        if message.photo:
            largest = message.photo[-1]
            found.append((largest, f"photo-{largest.file_unique_id}.jpg", "image/jpeg"))
        for media, default_name, default_type in (
            (message.document, "document", "application/octet-stream"),
            (message.voice, "voice.ogg", "audio/ogg"),
            (message.audio, "audio", "audio/mpeg"),
            (message.video, "video.mp4", "video/mp4"),
            (message.video_note, "video-note.mp4", "video/mp4"),
        ):
            if media is not None:
                name = getattr(media, "file_name", None) or default_name
                content_type = getattr(media, "mime_type", None) or default_type
                found.append((media, name, content_type))
        return tuple([await self._download(message, *item) for item in found])

    async def _download(
        self, message: Message, media: Any, name: str, content_type: str
    ) -> Attachment:
        name = _SAFE_NAME.sub("_", name)[:100] or "file"
        size = int(media.file_size or 0)
        if size > self._settings.max_file_bytes:
            return Attachment(
                name=name, content_type=content_type, size=size, ref="refused:too-large"
            )
        file = await media.get_file()
        folder = self._settings.attachments_dir / CHANNEL / str(message.chat.id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{message.message_id}-{name}"
        await file.download_to_drive(path)
        return Attachment(
            name=name,
            content_type=content_type,
            size=path.stat().st_size,
            ref=str(path.relative_to(self._settings.attachments_dir)),
        )

    def _take_poll_lock(self) -> bool:
        """One poller per bot on this machine: Telegram allows only one getUpdates at a time."""
        self._settings.attachments_dir.mkdir(parents=True, exist_ok=True)
        path = self._settings.attachments_dir / "telegram-polling.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._poll_lock = descriptor
        return True


def _retry_after(exc: RetryAfter) -> float:
    # PTB 22 warns that the attribute becomes a timedelta; accept either.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _language_hint(message: Message) -> dict[str, str]:
    code = (message.from_user.language_code or "") if message.from_user else ""
    if not code:
        return {}
    return {"language": "zh" if code.lower().startswith("zh") else "en"}
