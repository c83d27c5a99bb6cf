"""A WeChat Official Account: WeChat's callbacks (plain and safe mode) in, replies out
through the customer-service message API — against a local WeChat driven by wechatpy."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import InboundMessage, InboundReceipt
from channels.wechat import OfficialAccountChannel, OfficialAccountSettings
from router.delivery.channel_state import DatabaseChannelState
from router.storage import Database
from tests.channels.test_agent_files import LABEL, reply_with_files
from tests.channels.test_webchat_uploads import png
from tests.support.service import Service, make_config, running_service
from tests.support.wechat_api import (
    AES_KEY,
    APP_ID,
    OPENID,
    SECRET,
    TOKEN,
    FakeWeChat,
    message_xml,
    signed,
)

PATH = "/wechat/callback"


def wechat_overrides(fake: FakeWeChat, **extra: Any) -> dict[str, Any]:
    settings = {
        "enabled": True,
        "app_id": APP_ID,
        "app_secret": SECRET,
        "token": TOKEN,
        "api_base_url": fake.base_url,
        **extra,
    }
    return {"channels": {"wechat": settings}}


@pytest.fixture
async def account(tmp_path: Path, wechat_api: FakeWeChat) -> AsyncIterator[Service]:
    async with running_service(tmp_path, overrides=wechat_overrides(wechat_api)) as service:
        await service.add_agent("ana")
        yield service


async def post(service: Service, xml: str, *, safe: bool = False) -> tuple[int, str]:
    query, body = signed(xml, safe=safe)
    async with service.client.post(f"{PATH}?{query}", data=body) as response:
        return response.status, await response.text()


async def conversation(service: Service) -> dict[str, Any]:
    async with service.db.read() as repo:
        [found] = await repo.contact_conversations(1)
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{found.id}")
    return dict(detail)


async def test_the_console_checks_the_callback_url(account: Service) -> None:
    query, _ = signed("")
    async with account.client.get(f"{PATH}?{query}&echostr=5837397520238263") as response:
        assert response.status == 200 and await response.text() == "5837397520238263"
    forged = query.replace("signature=", "signature=0")
    async with account.client.get(f"{PATH}?{forged}&echostr=1") as response:
        assert response.status == 403


async def test_a_question_is_answered_by_a_customer_service_message_once(
    account: Service, wechat_api: FakeWeChat
) -> None:
    question = message_xml("text", msg_id=1001, Content="怎么申请退货？")
    assert await post(account, question) == (200, "success")
    [answer] = await wechat_api.wait_for_sent(1)
    assert answer["touser"] == OPENID and answer["msgtype"] == "text"
    assert "申请售后" in answer["text"]["content"]

    # WeChat sends the same MsgId again when it did not hear back in time: stored once.
    assert await post(account, question) == (200, "success")
    detail = await conversation(account)
    assert [m["text"] for m in detail["messages"] if m["direction"] == "in"] == ["怎么申请退货？"]
    assert len(wechat_api.sent) == 1 and wechat_api.token_fetches == 1


async def test_safe_mode_decrypts_and_refuses_plain_or_forged_callbacks(
    tmp_path: Path, wechat_api: FakeWeChat
) -> None:
    overrides = wechat_overrides(wechat_api, encoding_aes_key=AES_KEY)
    async with running_service(tmp_path, overrides=overrides) as service:
        question = message_xml("text", msg_id=2001, Content="How do I return an item?")
        assert await post(service, question, safe=True) == (200, "success")
        [answer] = await wechat_api.wait_for_sent(1)
        assert "After-sales" in answer["text"]["content"]
        # Plain mode is refused once the account is in safe mode.
        assert (await post(service, message_xml("text", msg_id=2002, Content="hi")))[0] == 403
        # A cipher text signed with another token is refused.
        query, body = signed(question, safe=True, token="another1")
        async with service.client.post(f"{PATH}?{query}", data=body) as response:
            assert response.status == 403


async def test_the_documented_safe_mode_vector(tmp_path: Path, wechat_api: FakeWeChat) -> None:
    """WeChat's published example: token 123456, that EncodingAESKey, that app id; the
    signature holds for nonce 437374425 and not for 437374424."""
    overrides = wechat_overrides(wechat_api, token="123456", encoding_aes_key=AES_KEY)
    # The example was signed in 2014: a window of twenty years lets it through.
    overrides["channels"]["wechat"]["callback_window_seconds"] = 20 * 365 * 86400
    encrypt = (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    )
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    signature = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
    async with running_service(tmp_path, overrides=overrides) as service:
        for nonce, expected in (("437374425", 400), ("437374424", 403)):
            query = f"timestamp=1411443780&nonce={nonce}&encrypt_type=aes&msg_signature={signature}"
            async with service.client.post(f"{PATH}?{query}", data=body) as response:
                # 400: the signature held and the text decrypted, but it is not a message.
                assert response.status == expected, nonce


async def test_a_correctly_signed_callback_from_long_ago_is_refused(
    tmp_path: Path, wechat_api: FakeWeChat
) -> None:
    """A recorded callback replayed a month later signs correctly, but is not news."""
    month_ago = time.time() - 30 * 86400
    for safe in (False, True):
        overrides = wechat_overrides(wechat_api, encoding_aes_key=AES_KEY if safe else "")
        async with running_service(tmp_path / str(safe), overrides=overrides) as service:
            old = message_xml("text", msg_id=3001, Content="怎么申请退货？")
            query, body = signed(old, safe=safe, at=month_ago)
            async with service.client.post(f"{PATH}?{query}", data=body) as response:
                assert response.status == 403
            query, _ = signed("", at=month_ago)
            async with service.client.get(f"{PATH}?{query}&echostr=1") as response:
                assert response.status == 403
            # Five minutes late (WeChat retries, clocks drift) is still in the window.
            query, body = signed(old, safe=safe, at=time.time() - 300)
            async with service.client.post(f"{PATH}?{query}", data=body) as response:
                assert response.status == 200
            async with service.db.read() as repo:
                assert len(await repo.contact_conversations(1)) == 1, "stored once, now"


async def test_a_qr_code_scene_is_kept_like_a_start_payload(
    account: Service, wechat_api: FakeWeChat
) -> None:
    event = message_xml("event", Event="subscribe", EventKey="qrscene_ORDER-1234")
    assert await post(account, event) == (200, "success")
    [greeting] = await wechat_api.wait_for_sent(1)
    assert greeting["msgtype"] == "text"
    detail = await conversation(account)
    [first] = [m for m in detail["messages"] if m["direction"] == "in"]
    assert first["extras"]["start_payload"] == "ORDER-1234"
    # Unsubscribing and menu clicks are acknowledged and left alone.
    assert await post(account, message_xml("event", Event="unsubscribe")) == (200, "success")


async def test_close_answers_come_as_a_menu_and_a_pick_is_answered(
    account: Service, wechat_api: FakeWeChat
) -> None:
    assert (await post(account, message_xml("text", msg_id=3001, Content="return")))[0] == 200
    [menu] = await wechat_api.wait_for_sent(1)
    assert menu["msgtype"] == "msgmenu"
    items = menu["msgmenu"]["list"]
    assert len(items) >= 2 and menu["msgmenu"]["head_content"]
    # Tapping an item sends its text with the item's id (bizmsgmenuid).
    pick = message_xml(
        "text", msg_id=3002, Content=items[0]["content"], bizmsgmenuid=items[0]["id"]
    )
    assert await post(account, pick) == (200, "success")
    answer = (await wechat_api.wait_for_sent(2))[1]
    assert answer["msgtype"] == "text" and answer["text"]["content"]
    detail = await conversation(account)
    assert detail["messages"][-1]["entry_id"] == items[0]["id"]


async def test_a_handoff_and_the_agents_reply_reach_the_customer_across_a_token_expiry(
    account: Service, wechat_api: FakeWeChat
) -> None:
    await post(account, message_xml("text", msg_id=4001, Content="转人工"))
    [ack] = await wechat_api.wait_for_sent(1)
    assert "工单" in ack["text"]["content"]
    detail = await conversation(account)
    cid = detail["id"]
    assert detail["status"] == "queued"
    await account.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")

    wechat_api.expire_tokens()  # WeChat says 42001: a new token, the same reply once
    status, _ = await account.api(
        "ana", "POST", f"/api/agent/conversations/{cid}/reply", {"text": "您好，我来处理"}
    )
    assert status == 202
    reply = (await wechat_api.wait_for_sent(2))[1]
    assert reply["text"]["content"] == "您好，我来处理"
    assert wechat_api.token_fetches == 2 and len(wechat_api.sent) == 2


async def test_a_reply_after_the_window_is_dead_with_the_reason(
    account: Service, wechat_api: FakeWeChat
) -> None:
    await post(account, message_xml("text", msg_id=5001, Content="转人工"))
    await wechat_api.wait_for_sent(1)
    cid = (await conversation(account))["id"]
    await account.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    wechat_api.fail_next(45015)
    async with account.events.subscribe() as events:
        await account.api(
            "ana", "POST", f"/api/agent/conversations/{cid}/reply", {"text": "还在吗？"}
        )
        async with asyncio.timeout(10):
            while type(await events.get()).__name__ != "DeliveryFailed":
                pass
    detail = await conversation(account)
    [failed] = detail["failed_deliveries"]
    assert "48-hour" in failed["last_error"]


async def test_photos_come_in_as_attachments_and_go_out_as_images(
    account: Service, wechat_api: FakeWeChat
) -> None:
    photo = png(6, 6)
    wechat_api.media["media-1"] = (photo, "image/png")
    image = message_xml("image", msg_id=6001, MediaId="media-1", PicUrl="http://mmbiz/1")
    assert await post(account, image) == (200, "success")
    # WeChat sends it again: stored once, and the second download is not kept.
    assert await post(account, image) == (200, "success")
    folder = account.config.server.data_dir / "attachments" / "wechat"
    assert [p.read_bytes() for p in folder.rglob("*") if p.is_file()] == [photo]
    detail = await conversation(account)
    [attachment] = detail["messages"][0]["attachments"]
    assert attachment["content_type"] == "image/png" and attachment["size"] == len(photo)
    headers = {"Authorization": f"Bearer {account.tokens['ana']}"}
    async with account.client.get(attachment["url"], headers=headers) as response:
        assert await response.read() == photo

    # A voice message carries WeChat's recognition as its text.
    wechat_api.media["voice-1"] = (b"#!AMR\n" + b"\x00" * 20, "audio/amr")
    voice = message_xml("voice", msg_id=6002, MediaId="voice-1", Format="amr", Recognition="转人工")
    assert await post(account, voice) == (200, "success")
    await wechat_api.wait_for_sent(1)
    cid = (await conversation(account))["id"]
    await account.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")

    status, _ = await reply_with_files(
        account, "ana", cid, [("part.png", photo, "image/png"), LABEL], text="看这里"
    )
    assert status == 202
    sent = await wechat_api.wait_for_sent(3)
    text, image_out = sent[1], sent[2]
    # The PDF cannot go as a WeChat message: its signed link does, with the text.
    assert text["msgtype"] == "text" and "退货标签.pdf" in text["text"]["content"]
    assert image_out["msgtype"] == "image"
    [(media_id, uploaded)] = wechat_api.uploads
    assert image_out["image"]["media_id"] == media_id and uploaded == photo


async def test_hostile_callbacks_get_a_clear_4xx(account: Service) -> None:
    query, _ = signed("")
    cases = [
        (query, b"not xml at all", 400),
        (query, b"<xml><MsgType>text</MsgType>", 400),
        (query, b"\xff\xfe<xml/>", 400),
        (query, b"<xml>" + b"a" * 70_000 + b"</xml>", 413),
        ("signature=x&timestamp=1&nonce=2", message_xml("text", Content="hi").encode(), 403),
        ("", message_xml("text", Content="hi").encode(), 403),
    ]
    for q, body, expected in cases:
        async with account.client.post(f"{PATH}?{q}", data=body) as response:
            assert response.status == expected, (body[:30], await response.text())


async def test_a_slow_store_is_retried_by_wechat_and_ingested_once() -> None:
    """WeChat waits five seconds, then sends the same message again: the first callback
    lets it (503), the ingest goes on, and the retry waits for that same ingest."""
    release, stored = asyncio.Event(), asyncio.Event()
    calls: list[InboundMessage] = []

    async def slow(message: InboundMessage) -> InboundReceipt:
        calls.append(message)
        await release.wait()
        stored.set()
        # The router drops the retry's copy as a duplicate.
        return InboundReceipt(conversation_id=1, message_id=1, duplicate=len(calls) > 1)

    channel = OfficialAccountChannel(
        settings=OfficialAccountSettings(
            app_id=APP_ID, app_secret=SECRET, token=TOKEN, ack_within_seconds=0.2
        )
    )
    app = web.Application()
    app.add_routes(channel.routes())
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await channel.start(slow)
        query, body = signed(message_xml("text", msg_id=7001, Content="hello"))
        for _ in range(2):  # the first callback and WeChat's retry, both while it stores
            async with client.post(f"{PATH}?{query}", data=body) as response:
                assert response.status == 503  # not stored yet: WeChat sends it again
        assert len(calls) == 1  # the retry waited on the ingest under way
        release.set()
        await stored.wait()
        async with client.post(f"{PATH}?{query}", data=body) as response:
            assert response.status == 200 and await response.text() == "success"
        await channel.stop()


async def test_nodes_share_one_access_token(database: Database, wechat_api: FakeWeChat) -> None:
    first, second = (
        OfficialAccountChannel(
            settings=OfficialAccountSettings(
                app_id=APP_ID, app_secret=SECRET, token=TOKEN, api_base_url=wechat_api.base_url
            ),
            tokens=DatabaseChannelState(database),
        )
        for _ in range(2)
    )
    for channel in (first, second):
        await channel.api.start()
    try:
        token = await first.api.token()
        assert await second.api.token() == token and wechat_api.token_fetches == 1
        # WeChat refused it (another node saw 42001 and refreshed): both use the new one.
        fresh = await second.api.token(refresh=True)
        assert fresh != token and await first.api.token() == fresh
        assert wechat_api.token_fetches == 2
        stored = await DatabaseChannelState(database).get(f"wechat:{APP_ID}")
        assert stored is not None and stored[0] == fresh and stored[1] > time.time() + 7000
    finally:
        for channel in (first, second):
            await channel.api.stop()


def test_the_fake_signs_as_wechat_documents() -> None:
    """The plain signature is SHA-1 over the sorted token, timestamp and nonce."""
    query, _ = signed("")
    params = dict(p.split("=", 1) for p in query.split("&"))
    expected = hashlib.sha1(
        "".join(sorted([TOKEN, params["timestamp"], params["nonce"]])).encode()
    ).hexdigest()
    assert params["signature"] == expected


async def test_wechat_check_says_whether_the_credentials_work(
    tmp_path: Path, wechat_api: FakeWeChat
) -> None:
    relaydesk = Path(sys.executable).with_name("relaydesk")

    async def check(secret: str) -> tuple[int, str]:
        overrides = wechat_overrides(wechat_api, app_secret=secret)
        overrides["server"] = {"public_url": "https://support.example.com"}
        config = make_config(tmp_path / secret[:8], overrides)
        process = await asyncio.create_subprocess_exec(
            str(relaydesk),
            *("--config", str(tmp_path / secret[:8] / "config.yaml"), "wechat", "check"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert config.channels.wechat.enabled
        return process.returncode or 0, output.decode()

    code, output = await check(SECRET)
    assert code == 0, output
    assert "Official Account: credentials work" in output
    assert "https://support.example.com/wechat/callback" in output
    code, output = await check("a-wrong-secret-0123")
    assert code == 1 and "refused the credentials" in output and "IP" in output
    assert "a-wrong-secret-0123" not in output
