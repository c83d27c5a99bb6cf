"""WeCom customer service (微信客服): WeCom's callback says there is news, RelayDesk
fetches it with kf/sync_msg from the stored cursor, stores it, then moves the cursor;
replies go by kf/send_msg inside WeCom's window — against a local WeCom."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.delivery.events import DeliveryFailed, MessageDelivered
from router.keys import CLOCK
from tests.support.clock import FakeClock
from tests.support.service import Service, make_config, running_service
from tests.support.wechat_api import (
    AES_KEY,
    CORP_ID,
    EXTERNAL_USERID,
    KF_SECRET,
    OPEN_KFID,
    TOKEN,
    FakeWeCom,
    kf_callback,
    kf_url_check,
)

PATH = "/wecom/kf/callback"


def kf_overrides(fake: FakeWeCom) -> dict[str, Any]:
    return {
        "channels": {
            "wecom_kf": {
                "enabled": True,
                "corp_id": CORP_ID,
                "secret": KF_SECRET,
                "open_kfid": OPEN_KFID,
                "token": TOKEN,
                "encoding_aes_key": AES_KEY,
                "api_base_url": fake.base_url,
            }
        }
    }


async def news(service: Service) -> None:
    """WeCom's callback: there is something to fetch."""
    query, body = kf_callback()
    async with service.client.post(f"{PATH}?{query}", data=body) as response:
        assert response.status == 200 and await response.text() == "success"


async def the_conversation(service: Service) -> dict[str, Any]:
    async with service.db.read() as repo:
        [found] = await repo.contact_conversations(1)
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{found.id}")
    return dict(detail)


async def test_wecom_checks_the_callback_url(tmp_path: Path, wecom: FakeWeCom) -> None:
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        async with service.client.get(f"{PATH}?{kf_url_check('1616140317555161061')}") as r:
            assert r.status == 200 and await r.text() == "1616140317555161061"
        forged = kf_url_check("1", token="another1")
        async with service.client.get(f"{PATH}?{forged}") as r:
            assert r.status == 403
        query, body = kf_callback(token="another1")
        async with service.client.post(f"{PATH}?{query}", data=body) as r:
            assert r.status == 403
        async with service.client.post(f"{PATH}?{query}", data=b"<xml>nonsense") as r:
            assert r.status in (400, 403)


async def test_a_correctly_signed_callback_from_long_ago_is_refused(
    tmp_path: Path, wecom: FakeWeCom
) -> None:
    month_ago = time.time() - 30 * 86400
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        async with service.client.get(f"{PATH}?{kf_url_check('1', at=month_ago)}") as r:
            assert r.status == 403
        query, body = kf_callback(at=month_ago)
        async with service.client.post(f"{PATH}?{query}", data=body) as r:
            assert r.status == 403
        query, body = kf_callback(at=time.time() - 300)
        async with service.client.post(f"{PATH}?{query}", data=body) as r:
            assert r.status == 200, "five minutes late is still in the window"


async def test_news_is_fetched_stored_and_answered(tmp_path: Path, wecom: FakeWeCom) -> None:
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        await service.add_agent("ana")
        wecom.customer_enters("ORDER-88")
        wecom.customer_writes("怎么申请退货？")
        wecom.customer_writes("How do I get an invoice?")
        await news(service)
        sent = await wecom.wait_for_sent(3)
        assert {(s["touser"], s["open_kfid"], s["msgtype"]) for s in sent} == {
            (EXTERNAL_USERID, OPEN_KFID, "text")
        }
        assert any("申请售后" in s["text"]["content"] for s in sent)
        detail = await the_conversation(service)
        incoming = [m for m in detail["messages"] if m["direction"] == "in"]
        assert incoming[0]["extras"]["start_payload"] == "ORDER-88"
        assert [m["text"] for m in incoming[1:]] == ["怎么申请退货？", "How do I get an invoice?"]
        # Pages of two: the second asked for from the first one's cursor.
        assert "2" in wecom.syncs
        # News with nothing new sends nothing.
        await news(service)
        assert len(wecom.sent) == 3


async def test_a_restart_neither_loses_nor_repeats(tmp_path: Path, wecom: FakeWeCom) -> None:
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        wecom.customer_writes("怎么申请退货？")
        await news(service)
        await wecom.wait_for_sent(1)
    # Written while RelayDesk was down: fetched at start, from where the cursor stood.
    asked_before = len(wecom.syncs)
    wecom.customer_writes("How do I get an invoice?")
    wecom.customer_writes("How long does a refund take?")
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        await service.add_agent("ana")
        await wecom.wait_for_sent(3)
        assert wecom.syncs[asked_before] == "1"  # not from the start
        detail = await the_conversation(service)
        texts = [m["text"] for m in detail["messages"] if m["direction"] == "in"]
        assert texts == [
            "怎么申请退货？",
            "How do I get an invoice?",
            "How long does a refund take?",
        ]
    assert len(wecom.sent) == 3


async def test_close_answers_are_a_menu_and_a_tap_is_answered(
    tmp_path: Path, wecom: FakeWeCom
) -> None:
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        await service.add_agent("ana")
        wecom.customer_writes("return")
        await news(service)
        [menu] = await wecom.wait_for_sent(1)
        assert menu["msgtype"] == "msgmenu"
        first = menu["msgmenu"]["list"][0]["click"]
        wecom.customer_writes(first["content"], menu_id=first["id"])
        await news(service)
        answer = (await wecom.wait_for_sent(2))[1]
        assert answer["msgtype"] == "text"
        detail = await the_conversation(service)
        assert detail["messages"][-1]["entry_id"] == first["id"]


async def reply(service: Service, cid: int, text: str) -> str:
    """An agent's reply a minute later, and what became of it: delivered, or the reason
    it is dead."""
    service.app[CLOCK].advance(minutes=1)
    async with service.events.subscribe() as events:
        status, _ = await service.api(
            "ana", "POST", f"/api/agent/conversations/{cid}/reply", {"text": text}
        )
        assert status == 202
        async with asyncio.timeout(10):
            while True:
                event = await events.get()
                if isinstance(event, MessageDelivered):
                    return "delivered"
                if isinstance(event, DeliveryFailed):
                    detail = await the_conversation(service)
                    return str(detail["failed_deliveries"][-1]["last_error"])


async def test_the_outbox_keeps_wecoms_reply_window(tmp_path: Path, wecom: FakeWeCom) -> None:
    clock = FakeClock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    async with running_service(tmp_path, overrides=kf_overrides(wecom), clock=clock) as service:
        await service.add_agent("ana")
        wecom.customer_writes("转人工")
        await news(service)
        await wecom.wait_for_sent(1)  # the handoff notice: one of five
        cid = (await the_conversation(service))["id"]
        await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
        for n in range(4):
            assert await reply(service, cid, f"reply {n}") == "delivered"
        refused = await reply(service, cid, "one too many")
        assert "5 replies since the customer last wrote" in refused
        assert len(wecom.sent) == 5  # WeCom was never asked

        clock.advance(minutes=1)
        wecom.customer_writes("还在吗")  # the customer writes: the window opens again
        await news(service)
        await asyncio.wait_for(_stored(service, "还在吗"), 10)
        assert await reply(service, cid, "在的") == "delivered"

        clock.advance(hours=49)
        late = await reply(service, cid, "两天后")
        assert "48-hour reply window has closed" in late


async def _stored(service: Service, text: str) -> None:
    """Until a message with ``text`` is stored (its event wakes the check)."""

    async def stored() -> bool:
        async with service.db.read() as repo:
            for conversation in await repo.contact_conversations(1):
                if any(m.text == text for m in await repo.messages(conversation.id)):
                    return True
        return False

    async with service.events.subscribe() as events:
        while not await stored():
            await events.get()


async def test_wechat_check_covers_wecom_customer_service(tmp_path: Path, wecom: FakeWeCom) -> None:
    make_config(tmp_path, kf_overrides(wecom))
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("relaydesk")),
        *("--config", str(tmp_path / "config.yaml"), "wechat", "check"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "WeCom customer service: credentials work" in text and "/wecom/kf/callback" in text
    assert KF_SECRET not in text


async def test_a_message_we_cannot_read_is_kept_for_a_person_and_the_sync_goes_on(
    tmp_path: Path, wecom: FakeWeCom
) -> None:
    async with running_service(tmp_path, overrides=kf_overrides(wecom)) as service:
        await service.add_agent("ana")
        wecom.log.append(
            {
                "msgid": "garbled-1",
                "external_userid": EXTERNAL_USERID,
                "origin": 3,
                "msgtype": "text",
                "text": "not the object WeCom sends",
                "send_time": "yesterday",
            }
        )
        wecom.log.append({"msgid": 7, "origin": 3})  # no customer: nothing to keep
        wecom.customer_writes("怎么申请退货？")
        await news(service)
        await asyncio.wait_for(_stored(service, "怎么申请退货？"), 10)
        detail = await the_conversation(service)
        first = detail["messages"][0]
        assert first["extras"]["flag"] == "a WeCom message RelayDesk could not read"
        assert detail["status"] == "queued"  # a person looks at what we could not read
