"""Sending on Telegram: answers in parts, choices as buttons, files, "typing…"."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import OrderedDict
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from channels.base import (
    OutboundAttachment,
    OutboundMessage,
    PermanentDeliveryError,
    RecipientUnreachable,
    TransientDeliveryError,
)
from channels.telegram.flood import FloodControl
from channels.telegram.split import split_text

__all__ = ["Sender"]

logger = logging.getLogger(__name__)

# Telegram shows a chat action for 5 seconds; renewing it every 4 keeps it steady.
TYPING_EVERY = 4.0
# The largest photo the Bot API takes as a photo; larger ones go as documents.
PHOTO_LIMIT = 10 * 1024 * 1024


class Sender:
    """Sends through ``bot`` within Telegram's flood limits."""

    def __init__(self, bot: Bot, flood: FloodControl) -> None:
        self._bot = bot
        self._flood = flood
        # Parts of a split answer already delivered, by idempotency key: a retry
        # after a failure half-way sends only the rest.
        self._sent_parts: OrderedDict[str, int] = OrderedDict()
        # When "typing" was last shown in each chat (it shows for 5 s): at most one
        # chat action per chat every TYPING_EVERY seconds, whoever asks.
        self._typing_shown: OrderedDict[int, float] = OrderedDict()

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
                    await self._bot.send_message(
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
            await self._bot.send_photo(chat_id, document)
        else:
            await self._bot.send_document(chat_id, document)

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
            await self._bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:
            logger.info("telegram: typing not shown in chat %s: %s", chat_id, exc.message)


def _retry_after(exc: RetryAfter) -> float:
    # PTB 22 warns that the attribute becomes a timedelta; accept either.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)
