"""`relaydesk serve` as a process: it starts, serves, stops gracefully, and a kill loses nothing."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.config import load_config
from router.storage import Database
from tests.support.service import make_config

pytestmark = pytest.mark.slow


@asynccontextmanager
async def serve(config_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        "--config",
        str(config_path),
        "serve",
        "--port",
        "0",
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await process.stderr.readline()).decode()
                assert line, "relaydesk serve exited before listening"
                if match := re.search(r"listening on (http://\S+)", line):
                    break
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def chat(base: str, text: str, token: str | None = None) -> tuple[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{base}/api/chat/ws") as ws:
        await ws.send_json({"type": "hello", "token": token})
        welcome = await ws.receive_json(timeout=10)
        await ws.send_json({"type": "message", "client_id": text, "text": text})
        asked = False  # a returning visitor is first replayed their history
        while True:
            frame = await ws.receive_json(timeout=10)
            if frame["type"] == "message" and frame.get("client_id") == text:
                asked = True
            elif asked and frame["type"] == "message" and frame["author"] == "bot":
                return welcome["visitor"]["token"], frame


async def test_sigterm_stops_gracefully_and_a_kill_loses_nothing(tmp_path: Path) -> None:
    make_config(tmp_path)
    config_path = tmp_path / "config.yaml"

    async with serve(config_path) as (process, base):
        token, answer = await chat(base, "How long is the warranty?")
        assert answer["kind"] == "answer"
        # An open visitor socket must not hold up the shutdown.
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{base}/api/chat/ws") as ws,
        ):
            await ws.send_json({"type": "hello"})
            await ws.receive_json(timeout=10)
            process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=15)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert await asyncio.wait_for(process.wait(), 30) == 0

    async with serve(config_path) as (process, base):
        _, answer = await chat(base, "How do I get an invoice?", token)
        assert "invoice" in answer["text"].lower()
        process.kill()  # no goodbye
        await process.wait()

    async with serve(config_path) as (_, base):
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as health:
            assert health.status == 200
        # Everything committed before the kill is there, in one conversation.
        db = Database(load_config(config_path).storage.url)
        async with db.read() as repo:
            messages = await repo.messages(1)
            conversations = await repo.contact_conversations(1)
        await db.dispose()
    assert len(conversations) == 1
    assert [m.text for m in messages if m.author_kind == "customer"] == [
        "How long is the warranty?",
        "How do I get an invoice?",
    ]
