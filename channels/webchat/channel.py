"""The web-chat channel: a chat page, an embeddable widget, one websocket per visitor tab.

Protocol (JSON text frames):

client → server
  ``{"type": "hello", "token": "...", "last_seq": 12, "epoch": "..."}``  first frame
  ``{"type": "message", "client_id": "...", "text": "..."}``
  ``{"type": "choice", "client_id": "...", "choice_id": "...", "label": "..."}``

server → client (every frame carries ``seq``: stream frames get the next number,
the others carry the visitor's current position)
  ``welcome``  the visitor's token, id and the stream ``epoch``
  ``message``  a stream frame: the customer's own message, a bot answer or
               clarification (with ``choices``), an agent reply, a notice
  ``ack``      a client message was stored (``duplicate``: it already was)
  ``typing``   a person is writing a reply
  ``error``    what was wrong with a frame; the connection stays up

A reconnecting client sends the last ``seq`` it saw and gets, in order, only
the stream frames after it. The frames live in this process (the last
``history_frames`` per visitor); ``epoch`` changes when that memory is new, so
a client knows to start over rather than skip frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from channels.base import (
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    OutboundKind,
    OutboundMessage,
    SenderIdentity,
)
from channels.webchat.tokens import VisitorTokens

__all__ = ["WebChatChannel", "WebChatSettings"]

logger = logging.getLogger(__name__)

CHANNEL = "webchat"
_HELLO_TIMEOUT = 10.0
_AUTHOR = {
    OutboundKind.ANSWER: "bot",
    OutboundKind.CLARIFY: "bot",
    OutboundKind.AGENT: "agent",
    OutboundKind.ACK: "system",
    OutboundKind.SURVEY: "system",
    OutboundKind.SYSTEM: "system",
}


@dataclass(frozen=True, slots=True)
class WebChatSettings:
    secret: bytes
    max_text_chars: int = 4000
    burst: int = 5
    per_minute: int = 30
    token_ttl_seconds: float = 30 * 86400
    history_frames: int = 200
    title: str = "RelayDesk"
    max_visitors: int = 50_000

    def __post_init__(self) -> None:
        if self.max_text_chars < 1 or self.burst < 1 or self.per_minute < 1:
            raise ValueError("web-chat limits must be positive")


class _Bucket:
    """Token bucket: ``burst`` messages at once, refilled at ``per_minute``."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, burst: int, per_minute: int) -> None:
        self.capacity = float(burst)
        self.level = float(burst)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 if a message may pass now, else the seconds until one may."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate


class _Visitor:
    __slots__ = ("bucket", "delivered", "epoch", "frames", "id", "seq", "sockets")

    def __init__(self, visitor_id: str, settings: WebChatSettings) -> None:
        self.id = visitor_id
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.frames: deque[dict[str, Any]] = deque(maxlen=settings.history_frames)
        self.sockets: set[web.WebSocketResponse] = set()
        self.bucket = _Bucket(settings.burst, settings.per_minute)
        # Ids of frames already in the stream: a re-sent reply is shown once.
        self.delivered: OrderedDict[str, None] = OrderedDict()

    def remember(self, frame_id: str, limit: int) -> bool:
        """False if ``frame_id`` was already streamed."""
        if frame_id in self.delivered:
            return False
        self.delivered[frame_id] = None
        while len(self.delivered) > limit:
            self.delivered.popitem(last=False)
        return True


class _FrameError(Exception):
    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.client_id = client_id


class WebChatChannel:
    """Web chat over websockets; serves its own page and widget script."""

    def __init__(self, *, settings: WebChatSettings) -> None:
        self._settings = settings
        self._tokens = VisitorTokens(secret=settings.secret, ttl_seconds=settings.token_ttl_seconds)
        # Least recently active first; beyond max_visitors the oldest offline ones are
        # forgotten (their conversation is kept by the router, only the replay buffer goes).
        self._visitors: OrderedDict[str, _Visitor] = OrderedDict()
        self._on_message: InboundHandler | None = None
        self._accepting = False
        # Generous enough for max_text_chars of escaped JSON; larger frames close the socket.
        self._max_frame = max(64 * 1024, settings.max_text_chars * 12 + 4096)
        self._assets = {
            name: _static(name) for name in ("chat.html", "chat.js", "chat.css", "widget.js")
        }
        self._assets["chat.html"] = self._assets["chat.html"].replace(
            "{{title}}", _escape_html(settings.title)
        )

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
        sockets = [ws for v in self._visitors.values() for ws in v.sockets]
        await asyncio.gather(
            *(ws.close(code=1001, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
        self._on_message = None

    def health(self) -> ChannelHealth:
        connected = sum(len(v.sockets) for v in self._visitors.values())
        return ChannelHealth(ok=self._accepting, detail=f"{connected} connected")

    async def send(self, outbound: OutboundMessage) -> None:
        """Put the reply in the visitor's stream; connected tabs get it now, others on reconnect."""
        visitor = self._visitor(outbound.address.recipient_id)
        if not visitor.remember(outbound.idempotency_key, self._settings.history_frames * 2):
            return
        await self._stream(
            visitor,
            {
                "type": "message",
                "id": outbound.idempotency_key,
                "author": _AUTHOR[outbound.kind],
                "kind": outbound.kind.value,
                "text": outbound.text,
                "choices": [{"id": c.id, "label": c.label} for c in outbound.choices],
                "at": outbound.created_at.isoformat(),
            },
        )

    async def show_typing(self, visitor_id: str) -> None:
        """Tell the visitor's open tabs that a person is writing (not kept for replay)."""
        visitor = self._visitors.get(visitor_id)
        if visitor is None:
            return
        frame = {"type": "typing", "seq": visitor.seq, "author": "agent"}
        await asyncio.gather(*(_send_quietly(ws, frame) for ws in tuple(visitor.sockets)))

    # -- HTTP ----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/chat", self._page),
            web.get("/chat/{asset:chat\\.(js|css)}", self._asset),
            web.get("/widget.js", self._widget),
            web.get("/api/chat/ws", self._websocket),
        ]

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._assets["chat.html"],
            content_type="text/html",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _asset(self, request: web.Request) -> web.Response:
        asset = request.match_info["asset"]
        content_type = "text/javascript" if asset.endswith(".js") else "text/css"
        return web.Response(
            text=self._assets[asset],
            content_type=content_type,
            headers={"Cache-Control": "no-cache"},
        )

    async def _widget(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._assets["widget.js"],
            content_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=self._max_frame)
        await ws.prepare(request)
        visitor: _Visitor | None = None
        try:
            visitor = await self._greet(ws)
            if visitor is None:
                return ws
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    if frame.type is WSMsgType.BINARY:
                        await self._error(ws, visitor, "invalid_frame", "send JSON text frames")
                    continue
                try:
                    await self._handle(visitor, frame.data, ws)
                except _FrameError as exc:
                    await self._error(ws, visitor, exc.code, str(exc), exc.client_id)
        finally:
            if visitor is not None:
                visitor.sockets.discard(ws)
        return ws

    async def _greet(self, ws: web.WebSocketResponse) -> _Visitor | None:
        try:
            first = await ws.receive(timeout=_HELLO_TIMEOUT)
        except TimeoutError:
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        if first.type is not WSMsgType.TEXT:
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        try:
            hello = json.loads(first.data)
        except (ValueError, RecursionError):
            hello = None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        now = time.time()
        token = hello.get("token")
        visitor_id = self._tokens.verify(token, now=now) if isinstance(token, str) else None
        if visitor_id is None:
            visitor_id = self._tokens.new_visitor_id()
        visitor = self._visitor(visitor_id)
        last_seq = hello.get("last_seq")
        if hello.get("epoch") != visitor.epoch or not isinstance(last_seq, int) or last_seq < 0:
            last_seq = 0
        await ws.send_json(
            {
                "type": "welcome",
                "seq": visitor.seq,
                "epoch": visitor.epoch,
                "visitor": {"id": visitor.id, "token": self._tokens.issue(visitor.id, now=now)},
                "max_text_chars": self._settings.max_text_chars,
                "title": self._settings.title,
            }
        )
        # Replay until caught up, then join: between the last empty look and joining
        # there is no await, so no frame can be streamed past this socket.
        sent = last_seq
        while missed := [frame for frame in visitor.frames if frame["seq"] > sent]:
            for frame in missed:
                await ws.send_json(frame)
                sent = frame["seq"]
        visitor.sockets.add(ws)
        return visitor

    async def _handle(self, visitor: _Visitor, data: str, ws: web.WebSocketResponse) -> None:
        try:
            frame = json.loads(data)
        except ValueError as exc:
            raise _FrameError("invalid_json", f"not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise _FrameError("invalid_json", "JSON nested too deeply") from exc
        if not isinstance(frame, dict):
            raise _FrameError("invalid_frame", "a frame must be a JSON object")
        kind = frame.get("type")
        client_id = frame.get("client_id")
        if kind not in ("message", "choice"):
            raise _FrameError("unknown_type", f"unknown frame type {kind!r}")
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 100:
            raise _FrameError("invalid_frame", "client_id must be a string of 1-100 characters")
        if kind == "message":
            text = frame.get("text")
            extras: dict[str, str] = {}
        else:
            text = frame.get("label")
            choice = frame.get("choice_id")
            if not isinstance(choice, str) or not choice:
                raise _FrameError("invalid_frame", "choice_id must be a string", client_id)
            extras = {"choice": choice}
        if not isinstance(text, str) or not text.strip():
            raise _FrameError("invalid_frame", "text must be a non-empty string", client_id)
        if not _encodable(text) or not _encodable(client_id):
            raise _FrameError(
                "invalid_text", "text holds an unpaired surrogate (\\ud800-\\udfff)", client_id
            )
        if len(text) > self._settings.max_text_chars:
            raise _FrameError(
                "too_long",
                f"messages are limited to {self._settings.max_text_chars} characters "
                f"(this one has {len(text)})",
                client_id,
            )
        wait = visitor.bucket.take()
        if wait > 0:
            raise _FrameError(
                "rate_limited",
                f"too many messages; try again in {wait:.0f} s",
                client_id,
            )
        if self._on_message is None or not self._accepting:
            raise _FrameError("unavailable", "chat is restarting; we will retry", client_id)
        inbound = InboundMessage(
            external_id=f"{visitor.id}:{client_id}",
            address=ChannelAddress(channel=CHANNEL, recipient_id=visitor.id, thread_id=visitor.id),
            sender=SenderIdentity(channel=CHANNEL, external_id=visitor.id),
            text=text,
            sent_at=datetime.now(UTC),
            extras=extras,
        )
        try:
            receipt = await self._on_message(inbound)
        except Exception as exc:
            logger.exception("web chat: visitor %s message %s not stored", visitor.id, client_id)
            raise _FrameError(
                "unavailable", "your message could not be stored; we will retry", client_id
            ) from exc
        if visitor.remember(f"c:{client_id}", self._settings.history_frames * 2):
            await self._stream(
                visitor,
                {
                    "type": "message",
                    "id": f"c:{client_id}",
                    "client_id": client_id,
                    "author": "customer",
                    "kind": "customer",
                    "text": text,
                    "choices": [],
                    "at": inbound.sent_at.isoformat(),
                },
            )
        await ws.send_json(
            {
                "type": "ack",
                "seq": visitor.seq,
                "client_id": client_id,
                "duplicate": receipt.duplicate,
                "conversation": receipt.conversation_id,
            }
        )

    async def _stream(self, visitor: _Visitor, frame: dict[str, Any]) -> None:
        visitor.seq += 1
        frame["seq"] = visitor.seq
        visitor.frames.append(frame)
        sockets = tuple(visitor.sockets)
        if sockets:
            await asyncio.gather(*(_send_quietly(ws, frame) for ws in sockets))

    async def _error(
        self,
        ws: web.WebSocketResponse,
        visitor: _Visitor,
        code: str,
        message: str,
        client_id: str | None = None,
    ) -> None:
        frame: dict[str, Any] = {
            "type": "error",
            "seq": visitor.seq,
            "code": code,
            "message": message,
        }
        if client_id is not None:
            frame["client_id"] = client_id
        await _send_quietly(ws, frame)

    def _visitor(self, visitor_id: str) -> _Visitor:
        visitor = self._visitors.get(visitor_id)
        if visitor is None:
            visitor = self._visitors[visitor_id] = _Visitor(visitor_id, self._settings)
            self._forget_idle()
        else:
            self._visitors.move_to_end(visitor_id)
        return visitor

    def _forget_idle(self) -> None:
        excess = len(self._visitors) - self._settings.max_visitors
        if excess <= 0:
            return
        for visitor_id in [v.id for v in self._visitors.values() if not v.sockets][:excess]:
            del self._visitors[visitor_id]


async def _send_quietly(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    # A socket closing under us is the reconnect logic's business, not the sender's.
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(frame)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _static(name: str) -> str:
    return resources.files("channels.webchat").joinpath("static", name).read_text("utf-8")


def _escape_html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
