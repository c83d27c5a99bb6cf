"""A web-chat visitor: a real websocket client speaking the chat protocol."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

Frame = dict[str, Any]


class Visitor:
    def __init__(self, client: TestClient[Any, Any], *, token: str | None = None) -> None:
        self._client = client
        self.token = token
        self.epoch: str | None = None
        self.last_seq = 0
        self.ws: ClientWebSocketResponse | None = None
        self.frames: list[Frame] = []
        self._unread: list[Frame] = []
        self.visitor_id: str | None = None

    async def connect(self, *, resume: bool = True) -> Frame:
        self.ws = await self._client.ws_connect("/api/chat/ws")
        await self.ws.send_json(
            {
                "type": "hello",
                "token": self.token,
                "last_seq": self.last_seq if resume else 0,
                "epoch": self.epoch if resume else None,
            }
        )
        welcome = await self._receive()
        assert welcome["type"] == "welcome", welcome
        self.token = welcome["visitor"]["token"]
        self.visitor_id = welcome["visitor"]["id"]
        self.epoch = welcome["epoch"]
        return welcome

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def send(self, text: str, *, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        assert self.ws is not None
        await self.ws.send_json({"type": "message", "client_id": client_id, "text": text})
        return client_id

    async def choose(self, choice: Frame) -> str:
        client_id = uuid.uuid4().hex
        assert self.ws is not None
        await self.ws.send_json(
            {
                "type": "choice",
                "client_id": client_id,
                "choice_id": choice["id"],
                "label": choice["label"],
            }
        )
        return client_id

    async def send_raw(self, data: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(data)

    async def _receive(self, within: float = 5.0) -> Frame:
        assert self.ws is not None
        message = await self.ws.receive(timeout=within)
        if message.type is not WSMsgType.TEXT:
            raise ConnectionError(f"websocket closed: {message.type!r} {message.data!r}")
        frame: Frame = message.json()
        self.frames.append(frame)
        if frame.get("type") == "message":
            assert frame["seq"] == self.last_seq + 1 or self.last_seq == 0, (
                f"frame {frame['seq']} after {self.last_seq}"
            )
            self.last_seq = frame["seq"]
        return frame

    async def wait_for(self, predicate: Callable[[Frame], bool], *, within: float = 5.0) -> Frame:
        """The first unread frame matching ``predicate``; frames passed over stay unread."""
        for index, frame in enumerate(self._unread):
            if predicate(frame):
                del self._unread[index]
                return frame
        async with asyncio.timeout(within):
            while True:
                frame = await self._receive(within)
                if predicate(frame):
                    return frame
                self._unread.append(frame)

    async def reply(self, *, within: float = 5.0) -> Frame:
        """The next message from our side (bot, agent or system); an error frame fails."""
        frame = await self.wait_for(
            lambda f: (
                f.get("type") == "error"
                or (f.get("type") == "message" and f["author"] != "customer")
            ),
            within=within,
        )
        if frame["type"] == "error":
            raise AssertionError(f"the server refused a message: {frame}")
        return frame

    async def tell(self, text: str) -> Frame:
        """Send ``text`` and wait until it is stored (its ack), expecting no answer."""
        client_id = await self.send(text)
        return await self.wait_for(
            lambda f: f.get("type") == "ack" and f.get("client_id") == client_id
        )

    async def ask(self, text: str) -> Frame:
        await self.send(text)
        return await self.reply()
