"""Bad input gets a 4xx or a clean refusal naming the problem: never a 500, never a retry
loop, never a control character in a header (issue 14, item 17)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from channels.email.threading import reply_subject
from tests.support.service import Service, running_service
from tests.support.telegram_api import FakeTelegram
from tests.support.webchat import Visitor

BRIDGE_SECRET = "bridge-secret-0123456789"
HOOK_SECRET = "telegram-webhook-secret-0123"
DEEP = "[" * 100_000 + "]" * 100_000
SURROGATE = '{"text": "a\\ud800b"}'


@pytest.fixture
async def hostile(tmp_path: Path, telegram_api: FakeTelegram) -> AsyncIterator[Service]:
    overrides: dict[str, Any] = {
        "channels": {
            "telegram": {
                "enabled": True,
                "token": telegram_api.token,
                "mode": "webhook",
                "webhook_secret": HOOK_SECRET,
                "api_base_url": telegram_api.base_url,
                "per_chat_interval_seconds": 0,
            },
            "api": {
                "shop": {
                    "secret": BRIDGE_SECRET,
                    "outbound_url": f"{telegram_api.base_url}/bridge-out",
                }
            },
        }
    }
    async with running_service(tmp_path, overrides=overrides) as service:
        await service.add_agent("ana")
        yield service


async def _post(service: Service, path: str, data: str, **headers: str) -> tuple[int, str]:
    async with service.client.post(
        path, data=data, headers={"Content-Type": "application/json", **headers}
    ) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("stamp", ["²³", "9" * 5000, "-1", " 12", "1e9", ""])
async def test_a_bridge_request_with_a_malformed_timestamp_is_unauthorised(
    hostile: Service, stamp: str
) -> None:
    status, body = await _post(
        hostile,
        "/api/channels/shop/messages",
        "{}",
        **{TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: "sha256=00"},
    )
    assert status == 401 and "Timestamp" in body


async def test_deeply_nested_json_is_a_400_everywhere(hostile: Service) -> None:
    auth = {"Authorization": f"Bearer {hostile.tokens['ana']}"}
    customer = Visitor(hostile.client)
    await customer.connect()
    ack = await customer.tell("talk to a person")
    conversation = ack["conversation"]

    status, body = await _post(
        hostile, f"/api/agent/conversations/{conversation}/notes", DEEP, **auth
    )
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_json"
    status, _ = await _post(
        hostile,
        "/telegram/webhook",
        DEEP,
        **{"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET},
    )
    assert status == 400
    stamp = int(time.time())
    status, _ = await _post(
        hostile,
        "/api/channels/shop/messages",
        DEEP,
        **{
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(BRIDGE_SECRET, stamp, DEEP.encode()),
        },
    )
    assert status == 400
    # The chat socket answers with a refusal frame and stays open (within its frame size).
    await customer.send_raw("[" * 30_000 + "]" * 30_000)
    refusal = await customer.wait_for(lambda f: f.get("type") == "error")
    assert refusal["code"] == "invalid_json"
    assert (await customer.tell("still here"))["type"] == "ack"


async def test_an_unpaired_surrogate_is_refused_by_the_api_and_the_chat_and_stored_from_telegram(
    hostile: Service, telegram_api: FakeTelegram
) -> None:
    auth = {"Authorization": f"Bearer {hostile.tokens['ana']}"}
    customer = Visitor(hostile.client)
    await customer.connect()
    conversation = (await customer.tell("talk to a person"))["conversation"]

    status, body = await _post(
        hostile, f"/api/agent/conversations/{conversation}/notes", SURROGATE, **auth
    )
    assert status == 400 and "surrogate" in json.loads(body)["error"]["message"]

    await customer.send_raw('{"type": "message", "client_id": "s1", "text": "a\\ud800b"}')
    refusal = await customer.wait_for(lambda f: f.get("type") == "error")
    assert refusal["code"] == "invalid_text" and refusal["client_id"] == "s1"

    # Telegram cannot be told "no": what it sends is stored, the bad half replaced.
    update = telegram_api.text_update("x")
    raw = json.dumps(update).replace('"text": "x"', '"text": "broken \\ud800 remote"')
    status, _ = await _post(
        hostile, "/telegram/webhook", raw, **{"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET}
    )
    assert status == 200
    async with hostile.db.read() as repo:
        stored = await repo.message_exists("telegram", f"555:{update['message']['message_id']}")
        assert stored is not None


def test_control_characters_never_reach_our_reply_subject() -> None:
    subject = reply_subject("Order\x00 42\r\nBcc: victim@example.com", 7, "Your request")
    assert subject == "Re: Order 42 Bcc: victim@example.com [#7]"
