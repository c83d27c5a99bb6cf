"""The web-chat channel: a chat page, an embeddable widget, one websocket per visitor tab.

The protocol (frames, replay, numbering) is described in ``channels.webchat.frames``.
Identity (``channels.webchat.identity``), limits (``.limits``), uploads (``.uploads``),
frames (``.frames``) and the pages (``.pages``) each live in their own module; the open
tabs in ``.tabs``; this one is the transport: the websocket, the handshake and ingest.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundMessage,
    SenderIdentity,
    TransientDeliveryError,
)
from channels.http import ClientAddresses
from channels.webchat.frames import (
    FrameError,
    echo_frame,
    error_frame,
    read_frame,
    read_hello,
    reply_frame,
    send_quietly,
)
from channels.webchat.identity import Caller, verified_shopper
from channels.webchat.limits import ChatLimits, RateLimits
from channels.webchat.pages import ChatPages
from channels.webchat.settings import WebChatSettings
from channels.webchat.stream import MemoryVisitorStream, VisitorStream
from channels.webchat.tabs import Live, OpenTabs
from channels.webchat.tokens import VisitorTokens
from channels.webchat.uploads import Refused, read_upload, refusal, store_upload

__all__ = ["WebChatChannel"]

logger = logging.getLogger(__name__)

CHANNEL = "webchat"
_HELLO_TIMEOUT = 10.0


class WebChatChannel:
    """Web chat over websockets; serves its own page and widget script."""

    def __init__(
        self,
        *,
        settings: WebChatSettings,
        secret: bytes,
        attachments_dir: Path | None = None,
        stream: VisitorStream | None = None,
        addresses: ClientAddresses | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        """``secret`` signs visitor tokens and makes shoppers' visitor ids (16+ bytes);
        ``attachments_dir``: where uploads go (under ``webchat/``), None: no uploads."""
        if len(secret) < 16:
            raise ValueError("web chat: the secret needs 16 or more bytes")
        self._settings = settings
        self._secret = secret
        self._attachments_dir = attachments_dir
        self._tokens = VisitorTokens(secret=secret, ttl_seconds=settings.token_ttl_seconds)
        self._tabs = OpenTabs(stream or MemoryVisitorStream(), settings.history_frames)
        self._addresses = addresses or ClientAddresses()
        # The stream is stored, so its numbering lives as long as the secret does.
        self._epoch = hashlib.sha256(b"relaydesk-stream:" + secret).hexdigest()[:8]
        self._limits = ChatLimits(settings, limits)
        self._pages = ChatPages(settings.title)
        self._on_message: InboundHandler | None = None
        self._accepting = False
        # Generous enough for max_text_chars of escaped JSON; larger frames close the socket.
        self._max_frame = max(64 * 1024, settings.max_text_chars * 12 + 4096)

    # -- the adapter protocol ------------------------------------------------------

    @property
    def name(self) -> str:
        return CHANNEL

    async def start(self, on_message: InboundHandler) -> None:
        self._on_message = on_message
        self._accepting = True

    async def stop(self) -> None:
        """Stop taking messages and close every visitor socket (clients reconnect)."""
        self._accepting = False
        sockets = self._tabs.sockets()
        await asyncio.gather(
            *(ws.close(code=1001, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
        self._on_message = None

    @property
    def connected(self) -> int:
        """Open visitor websockets on this node."""
        return len(self._tabs.sockets())

    @property
    def visitors_held(self) -> int:
        """Visitors this node keeps in memory: those with an open tab or a delivery."""
        return self._tabs.held

    def health(self) -> ChannelHealth:
        connected = self.connected
        return ChannelHealth(ok=self._accepting, detail=f"{connected} connected")

    async def send(self, outbound: OutboundMessage) -> None:
        """Store the reply in the visitor's stream, then show it to their open tabs.

        Stored is delivered: a visitor who is away sees it when they come back, on
        any node. A reply sent again keeps its number, so nobody sees it twice."""
        frame = reply_frame(outbound)
        try:
            await self._tabs.publish(outbound.address.recipient_id, outbound.idempotency_key, frame)
        except Exception as exc:
            raise TransientDeliveryError(f"the chat stream could not be stored: {exc}") from exc

    async def show_typing(self, visitor_id: str) -> None:
        """Tell the visitor's open tabs that a person is writing (not kept for replay)."""
        live = self._tabs.get(visitor_id)
        if live is not None:
            await live.show({"type": "typing", "author": "agent"})

    async def stored_elsewhere(self, visitor_id: str | None = None) -> None:
        """Another node stored frames for ``visitor_id`` (None: perhaps for anyone here,
        after missed news): show its open tabs what they have not seen, in order."""
        await self._tabs.stored_elsewhere(visitor_id)

    # -- HTTP ----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            *self._pages.routes(),
            web.get("/api/chat/ws", self._websocket),
            web.post("/api/chat/upload", self._upload),
        ]

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=self._max_frame)
        await ws.prepare(request)
        address = self._addresses.of(request)
        caller: Caller | None = None
        live: Live | None = None
        try:
            greeted = await self._greet(ws, address)
            if greeted is None:
                return ws
            caller, live = greeted
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    if frame.type is WSMsgType.BINARY:
                        await self._error(ws, "invalid_frame", "send JSON text frames")
                    continue
                try:
                    await self._handle(caller, live, frame.data, ws)
                except FrameError as exc:
                    await self._error(ws, exc.code, str(exc), exc.client_id)
        finally:
            if caller is not None and live is not None:
                live.sockets.discard(ws)
                self._tabs.let_go(caller.visitor_id, live)
        return ws

    async def _greet(self, ws: web.WebSocketResponse, address: str) -> tuple[Caller, Live] | None:
        """Read the hello frame, then welcome the caller and replay what they missed."""
        try:
            first = await ws.receive(timeout=_HELLO_TIMEOUT)
        except TimeoutError:
            first = None
        hello = (
            read_hello(first.data) if first is not None and first.type is WSMsgType.TEXT else None
        )
        if hello is None:
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        now = time.time()
        try:
            caller = await self._caller(hello, address, now)
        except _TooManyNew as refused:
            await self._error(ws, "rate_limited", str(refused))
            await ws.close(code=4029, message=b"too many new chats")
            return None
        last_seq = hello.get("last_seq")
        if (
            hello.get("epoch") != self._epoch
            or not isinstance(last_seq, int)
            or isinstance(last_seq, bool)
            or last_seq < 0
        ):
            last_seq = 0
        live = self._tabs.hold(caller.visitor_id)
        try:
            await self._join(ws, caller, live, last_seq, now)
        except Exception:
            self._tabs.let_go(caller.visitor_id, live)
            logger.exception("web chat: visitor %s could not be replayed", caller.visitor_id)
            await ws.close(code=1011, message=b"try again")
            return None
        return caller, live

    async def _caller(self, hello: dict[str, Any], address: str, now: float) -> Caller:
        """The shopper the shop vouched for, the visitor the token names, or a new visitor
        (_TooManyNew when the address starts too many new chats)."""
        caller = verified_shopper(
            hello.get("identity"),
            address,
            identity_secret=self._settings.identity_secret,
            secret=self._secret,
        )
        if caller is not None:
            return caller
        token = hello.get("token")
        visitor_id = self._tokens.verify(token, now=now) if isinstance(token, str) else None
        if visitor_id is None:
            wait = await self._limits.new_visitor(address)
            if wait > 0:
                logger.warning("web chat: too many new visitors from %s", address)
                raise _TooManyNew(wait)
            visitor_id = self._tokens.new_visitor_id()
        return Caller(visitor_id, address)

    async def _join(
        self, ws: web.WebSocketResponse, caller: Caller, live: Live, last_seq: int, now: float
    ) -> None:
        """Welcome, replay and join under the visitor's lock: no frame can be numbered and
        sent to the other tabs between the last frame read here and this socket joining."""
        async with live.lock:
            missed = await self._tabs.stream.after(
                caller.visitor_id, last_seq, self._settings.history_frames
            )
            newest = missed[-1]["seq"] if missed else last_seq
            await ws.send_json(
                {
                    "type": "welcome",
                    # The newest frame's number: the replay that follows ends there.
                    "seq": newest,
                    "epoch": self._epoch,
                    "visitor": {
                        "id": caller.visitor_id,
                        "token": self._tokens.issue(caller.visitor_id, now=now),
                        "verified": caller.verified,
                    },
                    "max_text_chars": self._settings.max_text_chars,
                    "title": self._settings.title,
                }
            )
            for frame in missed:
                await ws.send_json(frame)
            live.sockets.add(ws)
            live.shown = max(live.shown, newest)

    async def _handle(
        self, caller: Caller, live: Live, data: str, ws: web.WebSocketResponse
    ) -> None:
        """One frame from ``caller``, whose socket holds ``live`` while it is open."""
        frame = read_frame(data, self._settings.max_text_chars)
        client_id = frame.client_id
        wait = await self._limits.message(caller.visitor_id, caller.address)
        if wait > 0:
            raise FrameError(
                "rate_limited", f"too many messages; try again in {wait:.0f} s", client_id
            )
        if self._on_message is None or not self._accepting:
            raise FrameError("unavailable", "chat is restarting; we will retry", client_id)
        receipt = await self._ingest(caller, live, client_id, frame.text, frame.extras)
        await ws.send_json(
            {
                "type": "ack",
                "client_id": client_id,
                "duplicate": receipt.duplicate,
                "conversation": receipt.conversation_id,
            }
        )

    async def _ingest(
        self,
        caller: Caller,
        live: Live,
        client_id: str,
        text: str,
        extras: dict[str, str],
        attachments: tuple[Attachment, ...] = (),
    ) -> InboundReceipt:
        """Store one message of ``caller``'s and echo it to their tabs."""
        assert self._on_message is not None
        visitor_id = caller.visitor_id
        inbound = InboundMessage(
            external_id=f"{visitor_id}:{client_id}",
            address=ChannelAddress(channel=CHANNEL, recipient_id=visitor_id, thread_id=visitor_id),
            sender=SenderIdentity(
                channel=CHANNEL,
                external_id=visitor_id,
                display_name=caller.display_name,
                email=caller.email,
            ),
            text=text,
            attachments=attachments,
            sent_at=datetime.now(UTC),
            extras=extras,
        )
        # The visitor's lock is held from ingest to the echo: the bot's answer (sent
        # right after the commit) is numbered after the question it answers.
        async with live.lock:
            try:
                receipt = await self._on_message(inbound)
            except Exception as exc:
                logger.exception(
                    "web chat: visitor %s message %s not stored", visitor_id, client_id
                )
                raise FrameError(
                    "unavailable", "your message could not be stored; we will retry", client_id
                ) from exc
            echo = echo_frame(client_id, text, attachments, inbound.sent_at)
            try:
                await self._tabs.append(visitor_id, live, f"c:{client_id}", echo)
            except Exception:
                # The message is stored and answered; only its echo in the replay is lost.
                logger.exception("web chat: visitor %s echo of %s not kept", visitor_id, client_id)
        return receipt

    async def _upload(self, request: web.Request) -> web.Response:
        """``POST /api/chat/upload``: a visitor's file (``channels.webchat.uploads``),
        handed to the conversation as a message with its caption."""
        folder, limit = self._attachments_dir, self._settings.max_upload_bytes
        if folder is None or limit <= 0:
            return refusal(403, "uploads_off", "this chat takes no files")
        try:
            posted = await read_upload(
                request, limit=limit, max_text_chars=self._settings.max_text_chars
            )
        except Refused as refused:
            return refusal(refused.status, refused.code, str(refused))
        visitor_id = self._tokens.verify(posted.token, now=time.time())
        if visitor_id is None:
            return refusal(401, "unauthorized", "a valid visitor token is required")
        caller = Caller(visitor_id, self._addresses.of(request))
        wait = await self._limits.message(visitor_id, caller.address)
        if wait > 0:
            return refusal(429, "rate_limited", f"too many messages; try again in {wait:.0f} s")
        if self._on_message is None or not self._accepting:
            return refusal(503, "unavailable", "chat is restarting; send again")
        attachment, path = store_upload(folder, visitor_id, posted)
        live = self._tabs.hold(visitor_id)
        try:
            receipt = await self._ingest(
                caller, live, posted.client_id, posted.caption, {}, (attachment,)
            )
        except FrameError as exc:
            path.unlink(missing_ok=True)
            return refusal(503, exc.code, str(exc))
        finally:
            self._tabs.let_go(visitor_id, live)
        if receipt.duplicate:
            path.unlink(missing_ok=True)  # sent before: the first copy is the one kept
        return web.json_response(
            {
                "type": "ack",
                "client_id": posted.client_id,
                "duplicate": receipt.duplicate,
                "conversation": receipt.conversation_id,
                "attachment": {"name": attachment.name, "content_type": attachment.content_type},
            }
        )

    async def _error(
        self,
        ws: web.WebSocketResponse,
        code: str,
        message: str,
        client_id: str | None = None,
    ) -> None:
        await send_quietly(ws, error_frame(code, message, client_id))


class _TooManyNew(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"too many new chats; try again in {wait:.0f} s")
