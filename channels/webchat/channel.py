"""The web-chat channel: a chat page, an embeddable widget, one websocket per visitor tab.

Protocol (JSON text frames):

client → server
  ``{"type": "hello", "token": "...", "last_seq": 12, "epoch": "...",
     "identity": {"id": "...", "hash": "...", "name": "...", "email": "..."}}``  first frame
  ``{"type": "message", "client_id": "...", "text": "...", "survey_comment": true}``
               (``survey_comment``: the text comments on the rating just given)
  ``{"type": "choice", "client_id": "...", "choice_id": "...", "label": "..."}``

server → client (stream frames carry their ``seq``)
  ``welcome``  the visitor's token, id and the stream ``epoch``
  ``message``  a stream frame: the customer's own message, a bot answer or
               clarification (with ``choices``), an agent reply, a notice
  ``ack``      a client message was stored (``duplicate``: it already was)
  ``typing``   a person is writing a reply
  ``error``    what was wrong with a frame; the connection stays up

A reconnecting client sends the last ``seq`` it saw and gets, in order, only
the stream frames after it (the newest ``history_frames`` of them). The stream
is stored (``VisitorStream``; the service keeps it in its database), so a
restart or another node replays it, and a reply delivered twice keeps its
number: a client that skips frames at or below its last ``seq`` sees every
frame once. A frame numbered past ``last seq + 1`` means one was missed: the
client reconnects to have it replayed.

Identity: a shop that shares ``identity_secret`` with RelayDesk may pass the
signed-in shopper as ``identity``: ``hash`` is the hex HMAC-SHA256 of
``"<id>:<email>"`` (email may be empty) with that secret, made by the shop's
server. A verified shopper is the same visitor on every device (one history);
without a valid hash the identity is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import filetype  # type: ignore[import-untyped]
from aiohttp import BodyPartReader, WSMsgType, web

from channels.base import (
    Attachment,
    ChannelAddress,
    ChannelHealth,
    InboundHandler,
    InboundMessage,
    InboundReceipt,
    OutboundKind,
    OutboundMessage,
    SenderIdentity,
    TransientDeliveryError,
    encodable,
)
from channels.http import ClientAddresses
from channels.uploads import MULTIPART_ERRORS, posted_file_name, read_capped, stored_file_name
from channels.webchat.stream import MemoryVisitorStream, VisitorStream
from channels.webchat.tokens import VisitorTokens

__all__ = ["MemoryRateLimits", "RateLimits", "WebChatChannel", "WebChatSettings"]

logger = logging.getLogger(__name__)

CHANNEL = "webchat"
_HELLO_TIMEOUT = 10.0
# Rate-limit buckets kept per visitor and per address; the least recently used go first.
_MAX_BUCKETS = 20_000
_AUTHOR = {
    OutboundKind.ANSWER: "bot",
    OutboundKind.CLARIFY: "bot",
    OutboundKind.AGENT: "agent",
    OutboundKind.ACK: "system",
    OutboundKind.SURVEY: "system",
    OutboundKind.SYSTEM: "system",
    OutboundKind.FOLLOW_UP: "system",
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
    # Per client address (see ClientAddresses): new visitors, and messages of all its
    # visitors together, per minute.
    new_visitors_per_minute: int = 10
    address_messages_per_minute: int = 120
    # Shared with the shop to sign shoppers' identities; empty: identities are ignored.
    identity_secret: str = ""
    # Where uploads are written (under ``webchat/``); None or a zero size: no uploads.
    attachments_dir: Path | None = None
    max_upload_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_text_chars < 1 or self.burst < 1 or self.per_minute < 1:
            raise ValueError("web-chat limits must be positive")
        if self.new_visitors_per_minute < 1 or self.address_messages_per_minute < 1:
            raise ValueError("web-chat per-address limits must be positive")
        if self.identity_secret and len(self.identity_secret) < 16:
            raise ValueError("the web-chat identity secret needs 16+ characters")


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


class RateLimits(Protocol):
    """Token buckets by key, shared by whoever serves web chat (one process's memory, or
    the database when several nodes do)."""

    async def take(self, *buckets: tuple[str, int, int]) -> float:
        """A token from each (key, burst, per minute) bucket; 0 if every one had one,
        else the seconds until all will (a refused take still spends the others')."""
        ...


class MemoryRateLimits:
    """Buckets in this process, the least recently used forgotten past ``_MAX_BUCKETS``."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def take(self, *buckets: tuple[str, int, int]) -> float:
        wait = 0.0
        for key, burst, per_minute in buckets:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, per_minute)
                if len(self._buckets) > _MAX_BUCKETS:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            wait = max(wait, bucket.take())
        return wait


class _Live:
    """A visitor with open tabs (or a delivery in progress): the only per-visitor memory.
    ``lock`` keeps numbering and sending in one order, and a replay whole."""

    __slots__ = ("lock", "shown", "sockets", "users")

    def __init__(self) -> None:
        self.sockets: set[web.WebSocketResponse] = set()
        self.lock = asyncio.Lock()
        self.users = 0
        # The newest frame this node showed the visitor's open tabs.
        self.shown = 0


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who is on one socket: the visitor, and the shopper if the shop vouched for them."""

    visitor_id: str
    address: str
    display_name: str | None = None
    email: str | None = None


class _FrameError(Exception):
    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.client_id = client_id


class WebChatChannel:
    """Web chat over websockets; serves its own page and widget script."""

    def __init__(
        self,
        *,
        settings: WebChatSettings,
        stream: VisitorStream | None = None,
        addresses: ClientAddresses | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = VisitorTokens(secret=settings.secret, ttl_seconds=settings.token_ttl_seconds)
        self._stream: VisitorStream = stream or MemoryVisitorStream()
        self._addresses = addresses or ClientAddresses()
        # The stream is stored, so its numbering lives as long as the secret does.
        self._epoch = hashlib.sha256(b"relaydesk-stream:" + settings.secret).hexdigest()[:8]
        self._live: dict[str, _Live] = {}
        self._limits: RateLimits = limits or MemoryRateLimits()
        self._visitor_limit = (settings.burst, settings.per_minute)
        # An address may burst a quarter of its minute (a shop's office behind one NAT).
        self._address_limit = (
            max(1, settings.address_messages_per_minute // 4),
            settings.address_messages_per_minute,
        )
        self._new_visitor_limit = (
            settings.new_visitors_per_minute,
            settings.new_visitors_per_minute,
        )
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
        sockets = [ws for live in self._live.values() for ws in live.sockets]
        await asyncio.gather(
            *(ws.close(code=1001, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
        self._on_message = None

    @property
    def connected(self) -> int:
        """Open visitor websockets on this node."""
        return sum(len(live.sockets) for live in self._live.values())

    def health(self) -> ChannelHealth:
        connected = self.connected
        return ChannelHealth(ok=self._accepting, detail=f"{connected} connected")

    async def send(self, outbound: OutboundMessage) -> None:
        """Store the reply in the visitor's stream, then show it to their open tabs.

        Stored is delivered: a visitor who is away sees it when they come back, on
        any node. A reply sent again keeps its number, so nobody sees it twice."""
        frame = {
            "type": "message",
            "id": outbound.idempotency_key,
            "author": _AUTHOR[outbound.kind],
            "kind": outbound.kind.value,
            "text": outbound.text,
            "choices": [{"id": c.id, "label": c.label} for c in outbound.choices],
            # Files an agent sent: signed links, always served as downloads.
            "attachments": [
                {"name": a.name, "content_type": a.content_type, "size": a.size, "url": a.url}
                for a in outbound.attachments
            ],
            "at": outbound.created_at.isoformat(),
        }
        try:
            await self._publish(outbound.address.recipient_id, outbound.idempotency_key, frame)
        except Exception as exc:
            raise TransientDeliveryError(f"the chat stream could not be stored: {exc}") from exc

    async def show_typing(self, visitor_id: str) -> None:
        """Tell the visitor's open tabs that a person is writing (not kept for replay)."""
        live = self._live.get(visitor_id)
        if live is None:
            return
        frame = {"type": "typing", "author": "agent"}
        await asyncio.gather(*(_send_quietly(ws, frame) for ws in tuple(live.sockets)))

    # -- the stream ------------------------------------------------------------------

    def _hold(self, visitor_id: str) -> _Live:
        live = self._live.get(visitor_id)
        if live is None:
            live = self._live[visitor_id] = _Live()
        live.users += 1
        return live

    def _let_go(self, visitor_id: str, live: _Live) -> None:
        live.users -= 1
        if live.users <= 0 and not live.sockets and self._live.get(visitor_id) is live:
            del self._live[visitor_id]

    async def _publish(self, visitor_id: str, frame_id: str, frame: dict[str, Any]) -> None:
        live = self._hold(visitor_id)
        try:
            async with live.lock:
                await self._append(visitor_id, live, frame_id, frame)
        finally:
            self._let_go(visitor_id, live)

    async def _append(
        self, visitor_id: str, live: _Live, frame_id: str, frame: dict[str, Any]
    ) -> None:
        """Number and store ``frame``, then show it; the caller holds ``live.lock``."""
        seq, new = await self._stream.append(visitor_id, frame_id, frame)
        # A frame stored before was shown then, or is replayed on the reconnect that
        # follows whatever interrupted it: never twice.
        if new and live.sockets:
            if seq > live.shown + 1:  # another node stored frames in between: those first
                await self._show_stored(visitor_id, live, upto=seq - 1)
            numbered = {**frame, "seq": seq}
            await asyncio.gather(*(_send_quietly(ws, numbered) for ws in live.sockets))
            live.shown = max(live.shown, seq)

    async def stored_elsewhere(self, visitor_id: str | None = None) -> None:
        """Another node stored frames for ``visitor_id`` (None: perhaps for anyone here,
        after missed news): show its open tabs what they have not seen, in order."""
        wanted = [visitor_id] if visitor_id is not None else list(self._live)
        for visitor in wanted:
            live = self._live.get(visitor)
            if live is None or not live.sockets:
                continue
            async with live.lock:
                await self._show_stored(visitor, live)

    async def _show_stored(self, visitor_id: str, live: _Live, upto: int | None = None) -> None:
        frames = await self._stream.after(visitor_id, live.shown, self._settings.history_frames)
        for frame in frames:
            seq = int(frame["seq"])
            if upto is not None and seq > upto:
                break
            await asyncio.gather(*(_send_quietly(ws, frame) for ws in live.sockets))
            live.shown = max(live.shown, seq)

    # -- HTTP ----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/chat", self._page),
            web.get("/chat/{asset:chat\\.(js|css)}", self._asset),
            web.get("/widget.js", self._widget),
            web.get("/api/chat/ws", self._websocket),
            web.post("/api/chat/upload", self._upload),
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
        address = self._addresses.of(request)
        caller: _Caller | None = None
        live: _Live | None = None
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
                except _FrameError as exc:
                    await self._error(ws, exc.code, str(exc), exc.client_id)
        finally:
            if caller is not None and live is not None:
                live.sockets.discard(ws)
                self._let_go(caller.visitor_id, live)
        return ws

    async def _greet(self, ws: web.WebSocketResponse, address: str) -> tuple[_Caller, _Live] | None:
        try:
            first = await ws.receive(timeout=_HELLO_TIMEOUT)
        except TimeoutError:
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        hello: Any = None
        if first.type is WSMsgType.TEXT:
            with contextlib.suppress(ValueError, RecursionError):
                hello = json.loads(first.data)
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await ws.close(code=4000, message=b"expected a hello frame")
            return None
        now = time.time()
        caller = self._verified(hello.get("identity"), address)
        if caller is None:
            token = hello.get("token")
            visitor_id = self._tokens.verify(token, now=now) if isinstance(token, str) else None
            if visitor_id is None:
                wait = await self._limits.take(("new:" + address, *self._new_visitor_limit))
                if wait > 0:
                    logger.warning("web chat: too many new visitors from %s", address)
                    await self._error(
                        ws, "rate_limited", f"too many new chats; try again in {wait:.0f} s"
                    )
                    await ws.close(code=4029, message=b"too many new chats")
                    return None
                visitor_id = self._tokens.new_visitor_id()
            caller = _Caller(visitor_id, address)
        last_seq = hello.get("last_seq")
        if (
            hello.get("epoch") != self._epoch
            or not isinstance(last_seq, int)
            or isinstance(last_seq, bool)
            or last_seq < 0
        ):
            last_seq = 0
        # Replay and join under the visitor's lock: no frame can be numbered and sent
        # to the other tabs between the last frame read here and this socket joining.
        live = self._hold(caller.visitor_id)
        try:
            async with live.lock:
                missed = await self._stream.after(
                    caller.visitor_id, last_seq, self._settings.history_frames
                )
                await ws.send_json(
                    {
                        "type": "welcome",
                        # The newest frame's number: the replay that follows ends there.
                        "seq": missed[-1]["seq"] if missed else last_seq,
                        "epoch": self._epoch,
                        "visitor": {
                            "id": caller.visitor_id,
                            "token": self._tokens.issue(caller.visitor_id, now=now),
                            "verified": caller.email is not None or caller.display_name is not None,
                        },
                        "max_text_chars": self._settings.max_text_chars,
                        "title": self._settings.title,
                    }
                )
                for frame in missed:
                    await ws.send_json(frame)
                live.sockets.add(ws)
                live.shown = max(live.shown, missed[-1]["seq"] if missed else last_seq)
        except Exception:
            self._let_go(caller.visitor_id, live)
            logger.exception("web chat: visitor %s could not be replayed", caller.visitor_id)
            await ws.close(code=1011, message=b"try again")
            return None
        return caller, live

    def _verified(self, identity: object, address: str) -> _Caller | None:
        """The shopper the shop vouched for, or None (no identity, or a wrong hash)."""
        secret = self._settings.identity_secret
        if not secret or not isinstance(identity, dict):
            return None
        user_id, given = identity.get("id"), identity.get("hash")
        email = identity.get("email") or ""
        name = identity.get("name")
        if not isinstance(user_id, str) or not isinstance(given, str) or not isinstance(email, str):
            return None
        if not 1 <= len(user_id) <= 200 or len(email) > 320 or not encodable(user_id + email):
            return None
        expected = hmac.new(
            secret.encode(), f"{user_id}:{email}".encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(given.lower().encode(), expected.encode()):
            logger.warning("web chat: an identity with a wrong hash from %s", address)
            return None
        # The same shopper is the same visitor everywhere, and nobody can guess the id.
        visitor_id = hmac.new(
            self._settings.secret, f"shopper:{user_id}".encode(), hashlib.sha256
        ).hexdigest()[:32]
        display = name[:200] if isinstance(name, str) and encodable(name) and name else None
        return _Caller(visitor_id, address, display_name=display or user_id, email=email or None)

    async def _handle(
        self, caller: _Caller, live: _Live, data: str, ws: web.WebSocketResponse
    ) -> None:
        """One frame from ``caller``, whose socket holds ``live`` while it is open."""
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
            raise _FrameError("unknown_type", f"unknown frame type {str(kind)[:40]!r}")
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 100:
            raise _FrameError("invalid_frame", "client_id must be a string of 1-100 characters")
        if kind == "message":
            text = frame.get("text")
            extras: dict[str, str] = {}
            if frame.get("survey_comment") is True:
                extras["survey_comment"] = "1"
        else:
            text = frame.get("label")
            choice = frame.get("choice_id")
            if not isinstance(choice, str) or not choice or len(choice) > 200:
                raise _FrameError("invalid_frame", "choice_id must be a string", client_id)
            extras = {"choice": choice}
        if not isinstance(text, str) or not text.strip():
            raise _FrameError("invalid_frame", "text must be a non-empty string", client_id)
        if not encodable(text) or not encodable(client_id) or not encodable(str(extras)):
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
        wait = await self._limits.take(
            ("visitor:" + caller.visitor_id, *self._visitor_limit),
            ("address:" + caller.address, *self._address_limit),
        )
        if wait > 0:
            raise _FrameError(
                "rate_limited",
                f"too many messages; try again in {wait:.0f} s",
                client_id,
            )
        if self._on_message is None or not self._accepting:
            raise _FrameError("unavailable", "chat is restarting; we will retry", client_id)
        receipt = await self._ingest(caller, live, client_id, text, extras)
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
        caller: _Caller,
        live: _Live,
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
                raise _FrameError(
                    "unavailable", "your message could not be stored; we will retry", client_id
                ) from exc
            echo = {
                "type": "message",
                "id": f"c:{client_id}",
                "client_id": client_id,
                "author": "customer",
                "kind": "customer",
                "text": text,
                "choices": [],
                "attachments": [
                    {"name": a.name, "content_type": a.content_type, "size": a.size}
                    for a in attachments
                ],
                "at": inbound.sent_at.isoformat(),
            }
            try:
                await self._append(visitor_id, live, f"c:{client_id}", echo)
            except Exception:
                # The message is stored and answered; only its echo in the replay is lost.
                logger.exception("web chat: visitor %s echo of %s not kept", visitor_id, client_id)
        return receipt

    async def _upload(self, request: web.Request) -> web.Response:
        """``POST /api/chat/upload`` (multipart: ``token``, ``client_id``, an optional
        ``caption``, then ``file``): a photo, PDF or short video from a visitor, stored
        like an email attachment and handed to the conversation as a message. Its type
        is read from its bytes, not from what the browser claims."""
        folder = self._settings.attachments_dir
        limit = self._settings.max_upload_bytes
        if folder is None or limit <= 0:
            return _refuse(403, "uploads_off", "this chat takes no files")
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            return _refuse(413, "too_large", f"files are limited to {limit // 1024 // 1024} MB")
        if not request.content_type.startswith("multipart/form-data"):
            return _refuse(400, "invalid_body", "send multipart/form-data")
        fields: dict[str, str] = {}
        data = b""
        name = ""
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.name == "file":
                    name = posted_file_name(part.filename, "upload")
                    read = await read_capped(part, limit)
                    if read is None:
                        return _refuse(
                            413, "too_large", f"files are limited to {limit // 1024 // 1024} MB"
                        )
                    data = read
                    break  # the file is the last field
                if part.name in ("token", "client_id", "caption"):
                    value = await read_capped(part, self._settings.max_text_chars * 4 + 1024)
                    if value is None:
                        return _refuse(400, "invalid_body", f"{part.name}: too long")
                    fields[part.name] = value.decode("utf-8", "replace")
        except MULTIPART_ERRORS as exc:
            return _refuse(400, "invalid_body", f"not a readable multipart body: {exc}"[:200])
        visitor_id = self._tokens.verify(fields.get("token", ""), now=time.time())
        if visitor_id is None:
            return _refuse(401, "unauthorized", "a valid visitor token is required")
        client_id = fields.get("client_id", "")
        caption = fields.get("caption", "").strip()
        if not 1 <= len(client_id) <= 100 or not encodable(client_id + caption):
            return _refuse(400, "invalid_body", "client_id must be a string of 1-100 characters")
        if len(caption) > self._settings.max_text_chars:
            return _refuse(400, "too_long", "the caption is too long")
        if not data:
            return _refuse(400, "invalid_body", "file: a non-empty file is required")
        kind = filetype.guess(data[:8192])
        if kind is None or kind.mime not in UPLOAD_TYPES:
            return _refuse(
                415,
                "unsupported_type",
                "send a photo (JPEG, PNG, GIF, WebP, HEIC), a PDF or a video",
            )
        caller = _Caller(visitor_id, self._addresses.of(request))
        wait = await self._limits.take(
            ("visitor:" + visitor_id, *self._visitor_limit),
            ("address:" + caller.address, *self._address_limit),
        )
        if wait > 0:
            return _refuse(429, "rate_limited", f"too many messages; try again in {wait:.0f} s")
        if self._on_message is None or not self._accepting:
            return _refuse(503, "unavailable", "chat is restarting; send again")
        attachment, path = _store_upload(folder, visitor_id, name, kind.mime, data)
        live = self._hold(visitor_id)
        try:
            receipt = await self._ingest(caller, live, client_id, caption, {}, (attachment,))
        except _FrameError as exc:
            path.unlink(missing_ok=True)
            return _refuse(503, exc.code, str(exc))
        finally:
            self._let_go(visitor_id, live)
        if receipt.duplicate:
            path.unlink(missing_ok=True)  # sent before: the first copy is the one kept
        return web.json_response(
            {
                "type": "ack",
                "client_id": client_id,
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
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if client_id is not None:
            frame["client_id"] = client_id
        await _send_quietly(ws, frame)


async def _send_quietly(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    # A socket closing under us is the reconnect logic's business, not the sender's.
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(frame)


def _static(name: str) -> str:
    return resources.files("channels.webchat").joinpath("static", name).read_text("utf-8")


def _escape_html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


# What a visitor may send, by the type its bytes show: after-sales evidence.
UPLOAD_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "image/heif",
        "application/pdf",
        "video/mp4",
        "video/quicktime",
    }
)


def _store_upload(
    folder: Path, visitor_id: str, name: str, mime: str, data: bytes
) -> tuple[Attachment, Path]:
    """A new file under a random name (a stored file never changes), and its record."""
    where = folder / CHANNEL / visitor_id
    where.mkdir(parents=True, exist_ok=True)
    safe = stored_file_name(name, "upload")
    while True:
        path = where / f"{secrets.token_hex(12)}-{safe}"
        try:
            with path.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            continue
        break
    return (
        Attachment(
            name=name,
            content_type=mime,
            size=len(data),
            ref=str(path.relative_to(folder)),
        ),
        path,
    )


def _refuse(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "code": code, "message": message}, status=status)
