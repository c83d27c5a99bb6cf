"""No secret ever reaches a log line: the service's whole log, after a run through every
channel and a failed sign-in, holds none of the configured secrets (issue 14, item 16)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from channels.api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.support import wechat_api
from tests.support.mail import Relay, customer_mail, send
from tests.support.service import DEMO_KB, KB_CACHE
from tests.support.telegram_api import FakeTelegram

pytestmark = pytest.mark.slow

TELEGRAM_TOKEN = "987654321:AAHsecretTelegramTokenPart0123456789xyz"
SECRETS = {
    "server.secret_key": "server-secret-key-0123456789abcdef",
    "telegram.webhook_secret": "hook-secret-abcdefghijklmnop",
    "api.shop.secret": "bridge-secret-zxcvbnm123456",
    "telegram token": TELEGRAM_TOKEN,
    "telegram token's secret part": TELEGRAM_TOKEN.split(":", 1)[1],
    "wechat.app_secret": wechat_api.SECRET,
    "wechat.token": wechat_api.TOKEN,
    "wechat.encoding_aes_key": wechat_api.AES_KEY,
}


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=TELEGRAM_TOKEN)
    fake.server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    server = Relay()
    await server.start()
    yield server
    await server.stop()


async def test_the_log_of_a_run_through_every_channel_holds_no_secret(
    tmp_path: Path, telegram_api: FakeTelegram, relay: Relay, wecom: wechat_api.FakeWeCom
) -> None:
    wechat = wecom  # the local WeCom serves the Official Account's API too
    config = {
        "server": {"data_dir": str(tmp_path / "data"), "secret_key": SECRETS["server.secret_key"]},
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path / 'relaydesk.db'}"},
        "knowledge": {"path": str(DEMO_KB), "cache_dir": str(KB_CACHE)},
        "channels": {
            "telegram": {
                "enabled": True,
                "token": TELEGRAM_TOKEN,
                "mode": "webhook",
                "webhook_secret": SECRETS["telegram.webhook_secret"],
                "api_base_url": telegram_api.base_url,
                "per_chat_interval_seconds": 0,
            },
            "email": {
                "enabled": True,
                "addresses": ["support@shop.example"],
                "relay": {
                    "host": "127.0.0.1",
                    "port": relay.port,
                    "security": "none",
                },
                "smtp": {"enabled": True, "port": 0},
            },
            "wechat": {
                "enabled": True,
                "app_id": wechat_api.APP_ID,
                "app_secret": SECRETS["wechat.app_secret"],
                "token": SECRETS["wechat.token"],
                "encoding_aes_key": SECRETS["wechat.encoding_aes_key"],
                "api_base_url": wechat.base_url,
            },
            "api": {
                "shop": {
                    "secret": SECRETS["api.shop.secret"],
                    "outbound_url": f"{telegram_api.base_url}/bridge-out",
                }
            },
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "router.cli", "--config", str(path), "serve", "--port", "0"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    base = smtp = ""
    try:
        async with asyncio.timeout(60):
            while not base:
                line = (await process.stderr.readline()).decode()
                assert line, "relaydesk serve exited early:\n" + "".join(log)
                log.append(line)
                if match := re.search(r"SMTP receiver listening on \S+:(\d+)", line):
                    smtp = match.group(1)
                if match := re.search(r"listening on (http://\S+)", line):
                    base = match.group(1)
        reader = asyncio.create_task(_collect(process.stderr, log))
        async with aiohttp.ClientSession() as session:
            # Telegram: an update in, an answer out through the Bot API.
            async with session.post(
                f"{base}/telegram/webhook",
                json=telegram_api.text_update("How do I return an item?"),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRETS["telegram.webhook_secret"]},
            ) as response:
                assert response.status == 200
            await telegram_api.wait_for_sent(1, within=20)
            # A wrong webhook secret is logged as refused.
            async with session.post(
                f"{base}/telegram/webhook",
                json={},
                headers={"X-Telegram-Bot-Api-Secret-Token": "x"},
            ) as response:
                assert response.status == 403
            # Email in, and the answer out through the relay.
            await send(int(smtp), customer_mail("How long does a refund take?"))
            await relay.wait_for(1, within=20)
            # The bridge.
            body = json.dumps(
                {"message_id": "b-1", "sender": {"id": "u-1"}, "text": "How do I get an invoice?"}
            ).encode()
            stamp = int(time.time())
            async with session.post(
                f"{base}/api/channels/shop/messages",
                data=body,
                headers={
                    TIMESTAMP_HEADER: str(stamp),
                    SIGNATURE_HEADER: sign(SECRETS["api.shop.secret"], stamp, body),
                    "Content-Type": "application/json",
                },
            ) as response:
                assert response.status == 200
            # WeChat in safe mode, a forged callback, and a token WeChat stopped taking.
            query, body = wechat_api.signed(
                wechat_api.message_xml("text", msg_id=1, Content="怎么申请退货？"), safe=True
            )
            async with session.post(f"{base}/wechat/callback?{query}", data=body) as response:
                assert response.status == 200
            await wechat.wait_for_sent(1, within=20)
            async with session.post(f"{base}/wechat/callback?{query}x", data=body) as response:
                assert response.status == 403
            wechat.expire_tokens()
            query, body = wechat_api.signed(
                wechat_api.message_xml("text", msg_id=2, Content="How do I get an invoice?"),
                safe=True,
            )
            async with session.post(f"{base}/wechat/callback?{query}", data=body) as response:
                assert response.status == 200
            await wechat.wait_for_sent(2, within=20)
            # Web chat.
            async with session.ws_connect(f"{base}/api/chat/ws") as ws:
                await ws.send_json({"type": "hello"})
                await ws.receive_json(timeout=10)
            # A mail server that hangs up without QUIT, and a browser asking for the icon:
            # nothing to log about either.
            reader_, writer_ = await asyncio.open_connection("127.0.0.1", int(smtp))
            await reader_.readline()
            writer_.write(b"EHLO mx.example\r\n")
            await writer_.drain()
            await reader_.readline()
            writer_.close()
            async with session.get(f"{base}/favicon.ico") as response:
                assert response.status == 200
                assert response.content_type == "image/svg+xml"
            # A failed sign-in.
            async with session.post(
                f"{base}/inbox/login", data={"name": "nobody", "password": "not-a-password"}
            ) as response:
                assert response.status == 401
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await reader
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(log)
    assert "sendMessage" in text or "telegram" in text  # the log saw the traffic
    leaked = [name for name, secret in SECRETS.items() if secret in text]
    leaked += [f"WeChat access token {t}" for t in wechat.issued if t in text]
    assert leaked == [], f"secrets in the log: {leaked}"
    assert len(wechat.issued) == 2
    # Quiet where nothing happened: no Alembic chatter on a start that migrates nothing
    # new, no line per SMTP connection.
    assert "Connection lost during" not in text
    assert "Context impl" not in text and "Will assume" not in text


async def _collect(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode())
