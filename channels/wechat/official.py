"""A WeChat Official Account (公众号) as a channel.

WeChat calls our callback URL: a GET to verify it (``signature``/``timestamp``/
``nonce``/``echostr``), then a POST for every message and event, in plain or safe
(AES) mode. We answer ``success`` once the message is stored — never a passive reply
— and every reply goes out later through the customer-service message API (客服消息)
from the outbox, so a slow database never costs a message: WeChat waits five
seconds, then sends the same message again (same MsgId), and the retry joins the
ingest already under way instead of starting another.

wechatpy checks signatures, decrypts and parses the XML; its types stay here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import ScanEvent, SubscribeEvent, SubscribeScanEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import (
    BaseMessage,
    ImageMessage,
    LinkMessage,
    LocationMessage,
    TextMessage,
    VoiceMessage,
)
from wechatpy.utils import check_signature

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundMessage,
    ReplyWindow,
    SenderIdentity,
    encodable,
)
from channels.settings import check_usable
from channels.wechat.api import (
    MemoryChannelState,
    TokenStore,
    WeChatApi,
    fresh,
)
from channels.wechat.content import keep_media, send_reply
from channels.wechat.settings import OfficialAccountSettings

__all__ = ["OfficialAccountChannel"]

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
# WeChat's callbacks are small XML documents; anything larger is not one.
_MAX_BODY = 64 * 1024


class OfficialAccountChannel:
    """Customers writing to the brand's Official Account; replies by 客服消息."""

    deduplicates = False  # the customer-service API has no idempotency key
    # Customer-service messages: 5 within 48 hours of the customer's last message.
    reply_window = ReplyWindow(hours=48, replies=5)

    def __init__(
        self,
        *,
        settings: OfficialAccountSettings,
        attachments_dir: Path | None = None,
        tokens: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``attachments_dir``: where customers' files go; None: files are not kept."""
        check_usable(settings, "WeChat")
        self._settings = settings
        self._attachments_dir = attachments_dir
        self._clock = clock
        self._api = WeChatApi(
            base_url=settings.api_base_url,
            app_id=settings.app_id,
            secret=settings.app_secret,
            tokens=tokens or MemoryChannelState(),
            timeout=settings.api_timeout_seconds,
        )
        self._crypto = (
            WeChatCrypto(settings.token, settings.encoding_aes_key, settings.app_id)
            if settings.encoding_aes_key
            else None
        )
        self._on_message: InboundHandler | None = None
        # Ingests under way by message id: WeChat's retry waits on the first.
        self._ingesting: dict[str, asyncio.Task[InboundReceipt]] = {}
        self._last_error = ""

    @property
    def name(self) -> str:
        return CHANNEL

    @property
    def api(self) -> WeChatApi:
        return self._api

    async def start(self, on_message: InboundHandler) -> None:
        self._on_message = on_message
        await self._api.start()

    async def stop(self) -> None:
        self._on_message = None
        if self._ingesting:
            await asyncio.gather(*self._ingesting.values(), return_exceptions=True)
        await self._api.stop()

    def health(self) -> ChannelHealth:
        return ChannelHealth(
            ok=self._on_message is not None, detail=self._last_error or "callback ready"
        )

    def routes(self) -> list[web.RouteDef]:
        path = self._settings.callback_path
        return [web.get(path, self._verify), web.post(path, self._callback)]

    # -- receiving -------------------------------------------------------------------

    def _fresh(self, request: web.Request) -> bool:
        return fresh(
            request.query.get("timestamp", ""),
            window=self._settings.callback_window_seconds,
            now=self._clock(),
        )

    def _signed(self, request: web.Request) -> bool:
        query = request.query
        if not self._fresh(request):
            return False
        try:
            check_signature(
                self._settings.token,
                query.get("signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except InvalidSignatureException:
            return False
        return True

    async def _verify(self, request: web.Request) -> web.Response:
        """The console's check of the URL: echo ``echostr`` when the signature holds."""
        if not self._signed(request):
            return web.Response(status=403, text="invalid signature")
        return web.Response(text=request.query.get("echostr", ""))

    async def _callback(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > _MAX_BODY:
            return web.Response(status=413, text="too large")
        body = await request.content.read(_MAX_BODY + 1)
        if len(body) > _MAX_BODY:
            return web.Response(status=413, text="too large")
        query = request.query
        try:
            if self._crypto is not None:
                if query.get("encrypt_type") != "aes":
                    return web.Response(status=403, text="this account takes safe mode only")
                if not self._fresh(request):
                    return web.Response(status=403, text="invalid signature")
                xml = self._crypto.decrypt_message(
                    body,
                    query.get("msg_signature", ""),
                    query.get("timestamp", ""),
                    query.get("nonce", ""),
                )
            elif not self._signed(request):
                return web.Response(status=403, text="invalid signature")
            else:
                xml = body.decode("utf-8")
            message = parse_message(xml)
        except (InvalidSignatureException, InvalidAppIdException):
            return web.Response(status=403, text="invalid signature")
        except Exception as exc:
            # Not XML, not UTF-8, a broken cipher text: nothing WeChat would send.
            logger.info("wechat: unreadable callback: %s", type(exc).__name__)
            return web.Response(status=400, text="unreadable message")
        try:
            if message is None:
                raise ValueError("an empty document")
            inbound = await self._inbound(message)
        except (AttributeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            # Fields that are not what WeChat sends (a MsgId of letters, no sender...).
            logger.info("wechat: unreadable callback fields: %s", type(exc).__name__)
            return web.Response(status=400, text="unreadable message")
        if inbound is None:
            return web.Response(text="success")  # an event we do not act on
        if self._on_message is None:
            return web.Response(status=503, text="restarting")
        task = self._ingesting.get(inbound.external_id)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(self._on_message(inbound))
            self._ingesting[inbound.external_id] = task
            task.add_done_callback(lambda _: self._ingesting.pop(inbound.external_id, None))
        try:
            # Shielded: a callback that gives up leaves the ingest running for the retry.
            receipt = await asyncio.wait_for(
                asyncio.shield(task), self._settings.ack_within_seconds
            )
        except TimeoutError:
            logger.warning(
                "wechat: message %s not stored yet; WeChat will retry", inbound.external_id
            )
            return web.Response(status=503, text="not stored yet")
        except Exception:
            logger.exception("wechat: message %s not ingested", inbound.external_id)
            return web.Response(status=503, text="not stored; send it again")
        finally:
            if joined:
                self._forget_files(inbound)  # the first callback's copy is the one kept
        if receipt.duplicate:
            self._forget_files(inbound)
        return web.Response(text="success")

    def _forget_files(self, inbound: InboundMessage) -> None:
        """Files a repeated callback downloaded again, which no stored message names."""
        folder = self._attachments_dir
        if folder is None:
            return
        for attachment in inbound.attachments:
            (folder / attachment.ref).unlink(missing_ok=True)

    async def _inbound(self, message: BaseMessage) -> InboundMessage | None:
        """Our envelope for a WeChat message or event; None for what we ignore."""
        openid = str(message.source or "")
        if not openid or not encodable(openid):
            return None
        text = ""
        extras: dict[str, str] = {}
        attachments: tuple[Attachment, ...] = ()
        command: str | None = None
        external_id = f"msg-{message.id}" if message.id else ""
        if isinstance(message, TextMessage):
            text = str(message.content or "")
            menu = message._data.get("bizmsgmenuid")  # a clarifying menu's item
            if menu:
                extras["choice"] = str(menu)[:200]
        elif isinstance(message, ImageMessage):
            attachments = await self._media(openid, message.media_id, "image")
        elif isinstance(message, VoiceMessage):
            # WeChat's own speech recognition, where the account has it switched on.
            text = str(message.recognition or "")
            attachments = await self._media(openid, message.media_id, "voice")
        elif isinstance(message, LocationMessage):
            where = f"{message.location_x},{message.location_y}"
            text = f"[位置 location] {message.label or ''} ({where})"
            extras["location"] = where
        elif isinstance(message, LinkMessage):
            text = "\n".join(str(p) for p in (message.title, message.description, message.url) if p)
        elif isinstance(message, (SubscribeEvent, SubscribeScanEvent, ScanEvent)):
            # Followed the account, maybe by a QR code whose scene carries an order number.
            command = "start"
            scene = getattr(message, "scene_id", None) or getattr(message, "key", "")
            if scene:
                extras["start_payload"] = str(scene)[:200]
            external_id = f"event-{openid}-{message.time}-{message.event}"
        elif message.type == "event":
            return None  # unsubscribe, menu clicks, location reports...
        else:
            text = f"[{message.type}]"  # a kind we cannot show: a person looks
        if not external_id:
            external_id = f"{message.type}-{openid}-{message.time}"
        return InboundMessage(
            external_id=external_id[:200],
            address=ChannelAddress(channel=CHANNEL, recipient_id=openid),
            sender=SenderIdentity(channel=CHANNEL, external_id=openid),
            text=text if encodable(text) else "",
            attachments=attachments,
            sent_at=(
                datetime.fromtimestamp(message.time, UTC) if message.time else datetime.now(UTC)
            ),
            extras=extras,
            command=command,
        )

    async def _media(self, openid: str, media_id: object, kind: str) -> tuple[Attachment, ...]:
        folder = self._attachments_dir
        return await keep_media(self._api, folder, CHANNEL, openid, str(media_id or ""), kind)

    # -- sending ---------------------------------------------------------------------

    async def send(self, outbound: OutboundMessage) -> None:
        """Text in parts WeChat takes, choices as a menu message, photos as images,
        other files as their links."""
        await send_reply(
            self._api,
            outbound,
            path="/cgi-bin/message/custom/send",
            to={"touser": outbound.address.recipient_id},
            menu_item=lambda c: {"id": c.id[:64], "content": c.label[:60]},
        )
