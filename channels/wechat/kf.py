"""WeCom customer service (企业微信客服, 微信客服) as a channel: the account customers
reach from mini-programs, web pages and QR codes.

WeCom's callback carries no message, only news that there are some (the
``kf_msg_or_event`` event and a sync token). We answer it at once, then fetch what is
new with ``kf/sync_msg`` from the stored cursor, store every message, and only then
advance the cursor: a restart neither loses a message (the cursor did not move past
it) nor repeats one (its ``msgid`` is stored once). Replies go out by ``kf/send_msg``
within WeCom's window (48 hours after the customer's last message, five replies), which
the outbox enforces (``reply_window``); clarifying choices are menu messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xmltodict  # type: ignore[import-untyped]
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from channels.base import (
    ChannelAddress,
    ChannelHealth,
    DeliveryError,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    ReplyWindow,
    SenderIdentity,
    encodable,
)
from channels.settings import check_usable
from channels.wechat.api import (
    CursorStore,
    MemoryChannelState,
    TokenStore,
    WeChatApi,
    fresh,
)
from channels.wechat.content import keep_media, send_reply
from channels.wechat.settings import WeComKfSettings

__all__ = ["WeComKfChannel"]

logger = logging.getLogger(__name__)

CHANNEL = "wecom_kf"
_MAX_BODY = 64 * 1024
# sync_msg's origin: 3 the customer, 4 a system event, 5 a servicer in the WeCom app.
_FROM_CUSTOMER = 3


class WeComKfChannel:
    """Customers of a WeCom customer-service account; replies by ``kf/send_msg``."""

    deduplicates = False
    reply_window = ReplyWindow(hours=48, replies=5)

    def __init__(
        self,
        *,
        settings: WeComKfSettings,
        attachments_dir: Path | None = None,
        state: TokenStore | None = None,
        cursors: CursorStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``attachments_dir``: where customers' files go; None: files are not kept."""
        check_usable(settings, "WeCom")
        self._settings = settings
        self._attachments_dir = attachments_dir
        self._clock = clock
        memory = MemoryChannelState()
        self._cursors: CursorStore = cursors or memory
        self._api = WeChatApi(
            base_url=settings.api_base_url,
            app_id=settings.corp_id,
            secret=settings.secret,
            tokens=state or memory,
            timeout=settings.api_timeout_seconds,
            kind="wecom",
        )
        self._crypto = WeChatCrypto(settings.token, settings.encoding_aes_key, settings.corp_id)
        self._on_message: InboundHandler | None = None
        self._syncing = asyncio.Lock()
        self._pending: str | None = None  # a newer sync token while a sync runs
        self._task: asyncio.Task[None] | None = None
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
        # What came while we were down: fetched without waiting for the next callback.
        self._kick("")

    async def stop(self) -> None:
        self._on_message = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._api.stop()

    def health(self) -> ChannelHealth:
        return ChannelHealth(
            ok=self._on_message is not None and not self._last_error,
            detail=self._last_error or "callback ready",
        )

    def routes(self) -> list[web.RouteDef]:
        path = self._settings.callback_path
        return [web.get(path, self._verify), web.post(path, self._callback)]

    # -- the callback ------------------------------------------------------------------

    def _fresh(self, request: web.Request) -> bool:
        return fresh(
            request.query.get("timestamp", ""),
            window=self._settings.callback_window_seconds,
            now=self._clock(),
        )

    async def _verify(self, request: web.Request) -> web.Response:
        """WeCom's check of the URL: decrypt ``echostr`` and echo it."""
        q = request.query
        if not self._fresh(request):
            return web.Response(status=403, text="invalid signature")
        try:
            echo = self._crypto.check_signature(
                q.get("msg_signature", ""),
                q.get("timestamp", ""),
                q.get("nonce", ""),
                q.get("echostr", ""),
            )
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403, text="invalid signature")
        except Exception:
            return web.Response(status=400, text="unreadable echostr")
        return web.Response(text=echo.decode() if isinstance(echo, bytes) else str(echo))

    async def _callback(self, request: web.Request) -> web.Response:
        body = await request.content.read(_MAX_BODY + 1)
        if len(body) > _MAX_BODY:
            return web.Response(status=413, text="too large")
        q = request.query
        if not self._fresh(request):
            return web.Response(status=403, text="invalid signature")
        try:
            xml = self._crypto.decrypt_message(
                body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
            )
            event = xmltodict.parse(xml)["xml"]
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403, text="invalid signature")
        except Exception as exc:
            logger.info("wecom: unreadable callback: %s", type(exc).__name__)
            return web.Response(status=400, text="unreadable message")
        if not isinstance(event, Mapping) or event.get("Event") != "kf_msg_or_event":
            return web.Response(text="success")
        if event.get("OpenKfId") not in (None, self._settings.open_kfid):
            return web.Response(text="success")  # another account's news
        if self._on_message is None:
            return web.Response(status=503, text="restarting")
        self._kick(str(event.get("Token") or ""))
        return web.Response(text="success")

    # -- syncing -----------------------------------------------------------------------

    def _kick(self, token: str) -> None:
        """Fetch what is new; a sync already running fetches again when it ends."""
        if self._task is not None and not self._task.done():
            self._pending = token
            return
        self._task = asyncio.create_task(self._sync(token), name="wecom-kf-sync")

    async def _sync(self, token: str) -> None:
        while True:
            try:
                await self.sync(token)
                self._last_error = ""
            except DeliveryError as exc:
                self._last_error = f"sync_msg: {exc}"
                logger.warning("wecom: %s", self._last_error)
            except Exception:
                self._last_error = "sync_msg failed"
                logger.exception("wecom: sync failed")
            if self._pending is None:
                return
            token, self._pending = self._pending, None

    async def sync(self, token: str = "") -> int:
        """Fetch and store everything after the stored cursor; the number stored."""
        key = f"wecom-kf:{self._settings.corp_id}:{self._settings.open_kfid}"
        stored = 0
        async with self._syncing:
            cursor = await self._cursors.cursor(key)
            while self._on_message is not None:
                body: dict[str, Any] = {
                    "cursor": cursor,
                    "limit": 1000,
                    "open_kfid": self._settings.open_kfid,
                }
                if token:
                    body["token"] = token
                result = await self._api.post("/cgi-bin/kf/sync_msg", body)
                for item in result.get("msg_list") or ():
                    inbound = await self._readable(item)
                    if inbound is not None:
                        await self._on_message(inbound)  # stored before the cursor moves
                        stored += 1
                next_cursor = str(result.get("next_cursor") or cursor)
                if next_cursor != cursor:
                    await self._cursors.advance(key, next_cursor)
                    cursor = next_cursor
                if not result.get("has_more"):
                    break
        return stored

    async def _readable(self, item: object) -> InboundMessage | None:
        """``item`` as a message; one we cannot read is kept flagged for a person rather
        than stopping the sync (the cursor must move past it) or being lost."""
        if not isinstance(item, dict):
            return None
        try:
            return await self._inbound(item)
        except (AttributeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            user, msgid = str(item.get("external_userid") or ""), str(item.get("msgid") or "")
            logger.warning("wecom: message %s unreadable: %s", msgid[:40], type(exc).__name__)
            if not user or not msgid or not encodable(user + msgid):
                return None
            return InboundMessage(
                external_id=msgid[:200],
                address=ChannelAddress(channel=CHANNEL, recipient_id=user),
                sender=SenderIdentity(channel=CHANNEL, external_id=user),
                text="",
                flag="a WeCom message RelayDesk could not read",
                readable=False,
            )

    async def _inbound(self, item: dict[str, Any]) -> InboundMessage | None:
        kind = str(item.get("msgtype") or "")
        user = str(item.get("external_userid") or "")
        msgid = str(item.get("msgid") or "")
        text, extras, command = "", {}, None
        attachments: tuple[Any, ...] = ()
        if kind == "event":
            event = item.get("event") or {}
            user = str(event.get("external_userid") or user)
            if event.get("event_type") != "enter_session":
                return None  # a servicer's change, a failed send: nothing to answer
            command = "start"  # the customer opened the chat (from a QR code, a page...)
            if event.get("scene_param"):
                extras["start_payload"] = str(event["scene_param"])[:200]
            msgid = msgid or f"enter-{user}-{item.get('send_time')}"
        elif item.get("origin") != _FROM_CUSTOMER:
            return None
        elif kind == "text":
            text = str((item.get("text") or {}).get("content") or "")
            menu_id = (item.get("text") or {}).get("menu_id")
            if menu_id:
                extras["choice"] = str(menu_id)[:200]
        elif kind in ("image", "voice", "file", "video"):
            media_id = str((item.get(kind) or {}).get("media_id") or "")
            attachments = await keep_media(
                self._api, self._attachments_dir, CHANNEL, user, media_id, kind
            )
        elif kind == "location":
            place = item.get("location") or {}
            where = f"{place.get('latitude')},{place.get('longitude')}"
            text = (
                f"[位置 location] {place.get('name') or ''} {place.get('address') or ''} ({where})"
            )
            extras["location"] = where
        elif kind == "link":
            link = item.get("link") or {}
            text = "\n".join(str(link[k]) for k in ("title", "desc", "url") if link.get(k))
        else:
            text = f"[{kind or 'message'}]"
        if not user or not msgid or not encodable(user + msgid):
            return None
        sent = item.get("send_time")
        return InboundMessage(
            external_id=msgid[:200],
            address=ChannelAddress(channel=CHANNEL, recipient_id=user),
            sender=SenderIdentity(channel=CHANNEL, external_id=user),
            text=text if encodable(text) else "",
            attachments=attachments,
            sent_at=(
                datetime.fromtimestamp(int(sent), UTC)
                if isinstance(sent, int | str) and str(sent).isdigit()
                else datetime.now(UTC)
            ),
            extras=extras,
            command=command,
        )

    # -- sending -----------------------------------------------------------------------

    async def send(self, outbound: OutboundMessage) -> None:
        await send_reply(
            self._api,
            outbound,
            path="/cgi-bin/kf/send_msg",
            to={"touser": outbound.address.recipient_id, "open_kfid": self._settings.open_kfid},
            menu_item=lambda c: {
                "type": "click",
                "click": {"id": c.id[:64], "content": c.label[:60]},
            },
        )
