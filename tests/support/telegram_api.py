"""A local server speaking the Telegram Bot API over HTTP, for python-telegram-bot to talk to.

Implements what RelayDesk uses, with the JSON shapes of the Bot API documentation:
getMe, setWebhook, deleteWebhook, getUpdates (long polling), sendMessage, sendPhoto and
sendDocument (multipart uploads), sendChatAction, answerCallbackQuery, getFile and file
download. Failures can be scripted per
sendMessage (``fail_next(429, retry_after=2)``, ``fail_next(403)``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER = {"id": 7000, "is_bot": True, "first_name": "RelayDesk", "username": "relaydesk_bot"}


@dataclass
class SentMessage:
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    message_id: int


@dataclass
class SentFile:
    """A photo or document the bot uploaded."""

    chat_id: int
    method: str  # sendPhoto or sendDocument
    filename: str
    data: bytes


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-TOKEN"
    sent: list[SentMessage] = field(default_factory=list)
    sent_files: list[SentFile] = field(default_factory=list)
    callback_answers: list[str] = field(default_factory=list)
    # (chat_id, action) of every sendChatAction.
    chat_actions: list[tuple[int, str]] = field(default_factory=list)
    webhook: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    send_attempts: int = 0
    # The most getUpdates calls that were waiting at once (Telegram allows one).
    most_pollers: int = 0
    polls: int = 0
    _pollers: int = 0
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _failures: deque[tuple[int, int | None]] = field(default_factory=deque)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    server: TestServer | None = None

    # -- the test's side -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(self, status: int, *, retry_after: int | None = None) -> None:
        self._failures.append((status, retry_after))

    async def push(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()

    async def wait_for_sent(self, count: int, *, within: float = 10.0) -> list[SentMessage]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
            return list(self.sent)

    async def wait_for_chat_actions(self, count: int, *, within: float = 10.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.chat_actions) >= count)

    async def wait_for_callback_answers(self, count: int, *, within: float = 10.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.callback_answers) >= count)

    async def wait_for_polls(self, count: int, *, within: float = 15.0) -> None:
        """Until ``count`` getUpdates calls have come in, from whoever polls."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: self.polls >= count)

    async def wait_until_confirmed(self, update_id: int, *, within: float = 10.0) -> None:
        """Until a getUpdates call has confirmed ``update_id`` (offset past it)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(
                lambda: all(u["update_id"] > update_id for u in self._updates)
            )

    def new_update_id(self) -> int:
        return next(self._update_ids)

    def text_update(
        self,
        text: str,
        *,
        chat_id: int = 555,
        message_id: int | None = None,
        edited: bool = False,
        language_code: str = "en",
        update_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        message = {
            "message_id": message_id or next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Mei"},
            "from": {
                "id": chat_id,
                "is_bot": False,
                "first_name": "Mei",
                "last_name": "Chen",
                "language_code": language_code,
            },
            **extra,
        }
        if text:
            message["text"] = text
        if edited:
            message["edit_date"] = int(time.time())
        return {
            "update_id": update_id or self.new_update_id(),
            "edited_message" if edited else "message": message,
        }

    def photo_update(self, caption: str, *, chat_id: int = 555) -> dict[str, Any]:
        self.files["photos/file_1.jpg"] = b"\xff\xd8\xff\xe0 not really a jpeg"
        photo = [
            {"file_id": "small", "file_unique_id": "u-small", "width": 90, "height": 90},
            {
                "file_id": "big",
                "file_unique_id": "u-big",
                "width": 800,
                "height": 600,
                "file_size": len(self.files["photos/file_1.jpg"]),
            },
        ]
        return self.text_update("", chat_id=chat_id, photo=photo, caption=caption)

    def button_update(self, sent: SentMessage, label: str, *, chat_id: int = 555) -> dict[str, Any]:
        assert sent.reply_markup is not None
        button = next(
            b for row in sent.reply_markup["inline_keyboard"] for b in row if b["text"] == label
        )
        return {
            "update_id": self.new_update_id(),
            "callback_query": {
                "id": f"cq{next(self._ids)}",
                "from": {"id": chat_id, "is_bot": False, "first_name": "Mei"},
                "chat_instance": "ci",
                "data": button["callback_data"],
                "message": {
                    "message_id": sent.message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private", "first_name": "Mei"},
                    "from": BOT_USER,
                    "text": sent.text,
                    "reply_markup": sent.reply_markup,
                },
            },
        }

    # -- the Bot API -----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        return app

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params: dict[str, Any] = dict(await request.post())
        if request.content_type == "application/json":
            params = await request.json()
        handler = getattr(self, "_" + request.match_info["method"], None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result: web.Response = await handler(params)
        return result

    async def _getMe(self, _: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def _setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token", "")}
        return _ok(True)

    async def _deleteWebhook(self, _: dict[str, Any]) -> web.Response:
        self.webhook = {}
        return _ok(True)

    async def _getUpdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        self._pollers += 1
        self.most_pollers = max(self.most_pollers, self._pollers)
        async with self._changed:
            self.polls += 1
            self._changed.notify_all()
        try:
            return await self._long_poll(offset, timeout)
        finally:
            self._pollers -= 1

    async def _long_poll(self, offset: int, wait: float) -> web.Response:
        async with self._changed:
            # An offset confirms every update before it: Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self._changed.notify_all()
            if not self._updates and wait:
                try:
                    async with asyncio.timeout(min(wait, 5.0)):
                        await self._changed.wait_for(lambda: bool(self._updates))
                except TimeoutError:
                    pass
            return _ok(list(self._updates))

    async def _sendMessage(self, params: dict[str, Any]) -> web.Response:
        async with self._changed:
            self.send_attempts += 1
            if self._failures:
                status, retry_after = self._failures.popleft()
                self._changed.notify_all()
                if status == 429:
                    return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)
                if status == 403:
                    return _error(403, "Forbidden: bot was blocked by the user")
                return _error(status, "Bad Request: chat not found")
            markup = params.get("reply_markup")
            sent = SentMessage(
                chat_id=int(params["chat_id"]),
                text=str(params["text"]),
                reply_markup=json.loads(markup) if isinstance(markup, str) else markup,
                message_id=next(self._ids),
            )
            self.sent.append(sent)
            self._changed.notify_all()
        return _ok(
            {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": {"id": sent.chat_id, "type": "private"},
                "from": BOT_USER,
                "text": sent.text,
            }
        )

    async def _sendPhoto(self, params: dict[str, Any]) -> web.Response:
        return await self._upload("sendPhoto", "photo", params)

    async def _sendDocument(self, params: dict[str, Any]) -> web.Response:
        return await self._upload("sendDocument", "document", params)

    async def _upload(self, method: str, field_name: str, params: dict[str, Any]) -> web.Response:
        upload = params.get(field_name)
        if not isinstance(upload, web.FileField):
            return _error(400, f"Bad Request: there is no {field_name} in the request")
        async with self._changed:
            sent = SentFile(
                chat_id=int(params["chat_id"]),
                method=method,
                filename=upload.filename,
                data=upload.file.read(),
            )
            self.sent_files.append(sent)
            self._changed.notify_all()
        return _ok(
            {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": sent.chat_id, "type": "private"},
                "from": BOT_USER,
                field_name: (
                    [{"file_id": "p1", "file_unique_id": "up1", "width": 1, "height": 1}]
                    if field_name == "photo"
                    else {"file_id": "d1", "file_unique_id": "ud1", "file_name": sent.filename}
                ),
            }
        )

    async def wait_for_files(self, count: int, *, within: float = 10.0) -> list[SentFile]:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent_files) >= count)
        return self.sent_files[:count]

    async def _sendChatAction(self, params: dict[str, Any]) -> web.Response:
        async with self._changed:
            self.chat_actions.append((int(params["chat_id"]), str(params["action"])))
            self._changed.notify_all()
        return _ok(True)

    async def _answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        async with self._changed:
            self.callback_answers.append(str(params["callback_query_id"]))
            self._changed.notify_all()
        return _ok(True)

    async def _getFile(self, params: dict[str, Any]) -> web.Response:
        path = "photos/file_1.jpg"
        return _ok(
            {
                "file_id": params["file_id"],
                "file_unique_id": "u-" + str(params["file_id"]),
                "file_size": len(self.files.get(path, b"")),
                "file_path": path,
            }
        )

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["path"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
