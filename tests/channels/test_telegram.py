"""Telegram through python-telegram-bot against a local Bot API server, webhook and polling."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from channels.base import InboundMessage, InboundReceipt
from channels.telegram import TelegramChannel, TelegramSettings
from router.keys import CHANNELS
from router.storage import Database
from tests.support.service import Service, make_config, running_service
from tests.support.telegram_api import FakeTelegram

SECRET = "telegram-webhook-secret-0123"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def telegram_overrides(fake: FakeTelegram, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "channels": {
            "telegram": {
                "enabled": True,
                "token": fake.token,
                "mode": mode,
                "webhook_secret": SECRET,
                "api_base_url": fake.base_url,
                "per_chat_interval_seconds": 0,
                "poll_timeout_seconds": 1,
                **extra,
            }
        }
    }


@pytest.fixture
async def webhook(tmp_path: Path, telegram_api: FakeTelegram) -> AsyncIterator[Service]:
    async with running_service(
        tmp_path, overrides=telegram_overrides(telegram_api, "webhook")
    ) as service:
        yield service


async def post_update(service: Service, update: dict[str, Any], headers: Any = HEADERS) -> int:
    async with service.client.post("/telegram/webhook", json=update, headers=headers) as response:
        return response.status


async def test_the_story_from_a_telegram_chat_by_webhook(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    service, fake = webhook, telegram_api
    await service.add_agent("ana")

    assert await post_update(service, fake.text_update("/start ORDER-1234")) == 200
    [greeting] = await fake.wait_for_sent(1)
    assert greeting.chat_id == 555 and "Hello" in greeting.text

    assert await post_update(service, fake.text_update("How do I return an item?")) == 200
    answer = (await fake.wait_for_sent(2))[-1]
    assert "After-sales service" in answer.text and answer.reply_markup is None

    await post_update(service, fake.text_update("return"))
    clarify = (await fake.wait_for_sent(3))[-1]
    assert clarify.reply_markup is not None
    labels = [b["text"] for row in clarify.reply_markup["inline_keyboard"] for b in row]
    assert "Return deadline" in labels

    await post_update(service, fake.button_update(clarify, "Return deadline"))
    await fake.wait_for_callback_answers(1)
    chosen = (await fake.wait_for_sent(4))[-1]
    assert "without giving a reason" in chosen.text

    await post_update(service, fake.text_update("/human"))
    notice = (await fake.wait_for_sent(5))[-1]
    assert "will answer by" in notice.text

    _, queue = await service.api("ana", "GET", "/api/agent/conversations?status=queued")
    [conversation] = queue["conversations"]
    assert conversation["channel"] == "telegram"
    cid = conversation["id"]
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert detail["handoffs"][0]["reason"] == "asked_for_human"
    assert detail["contact"]["display_name"] == "Mei Chen"
    first = detail["messages"][0]
    assert first["text"] == "/start ORDER-1234"
    assert first["extras"]["start_payload"] == "ORDER-1234"
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await service.api(
        "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "Hi Mei, on it."}
    )
    reply = (await fake.wait_for_sent(6))[-1]
    assert reply.text == "Hi Mei, on it." and reply.chat_id == 555
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    # Resolved after a person's reply: the rating is asked with buttons in the chat.
    survey = (await fake.wait_for_sent(7))[-1]
    assert "closed" in survey.text and survey.reply_markup is not None
    stars = [b["text"] for row in survey.reply_markup["inline_keyboard"] for b in row]
    assert len(stars) == 5 and stars[4].startswith("★★★★★")
    await post_update(service, fake.button_update(survey, stars[4]))
    await fake.wait_for_callback_answers(2)
    assert "Thank you" in (await fake.wait_for_sent(8))[-1].text
    _, rated = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert rated["status"] == "resolved" and rated["satisfaction"]["score"] == 5


async def test_group_chats_are_ignored_unless_enabled(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    update = telegram_api.text_update("How do I get an invoice?")
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Deals"}
    assert await post_update(webhook, update) == 200
    await post_update(webhook, telegram_api.text_update("How long is the warranty?"))
    [only] = await telegram_api.wait_for_sent(1)
    assert "warranty" in only.text.lower() and only.chat_id == 555
    async with webhook.db.read() as repo:
        assert await repo.count_by_status() == {"bot": 1}


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_stored(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    update = telegram_api.text_update("How do I return an item?")
    assert await post_update(webhook, update, headers={}) == 403
    bad = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
    assert await post_update(webhook, update, headers=bad) == 403
    async with webhook.db.read() as repo:
        assert await repo.count_by_status() == {}
    assert telegram_api.sent == []


async def test_the_same_update_twice_is_one_message(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    update = telegram_api.text_update("How do I get an invoice?", message_id=42)
    assert await post_update(webhook, update) == 200
    assert await post_update(webhook, update) == 200
    # Redelivered under a new update id (e.g. after our restart): still one message.
    again = telegram_api.text_update("How do I get an invoice?", message_id=42)
    assert await post_update(webhook, again) == 200
    await post_update(webhook, telegram_api.text_update("How long is the warranty?"))
    sent = await telegram_api.wait_for_sent(2)
    assert ["invoice" in sent[0].text.lower(), "warranty" in sent[1].text.lower()] == [True, True]
    async with webhook.db.read() as repo:
        customer = [m for m in await repo.messages(1) if m.author_kind == "customer"]
    assert len(customer) == 2


async def test_an_edit_updates_the_text_and_is_not_answered_again(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    await post_update(webhook, telegram_api.text_update("How do I get an invoce?", message_id=9))
    await telegram_api.wait_for_sent(1)
    edit = telegram_api.text_update("How do I get an invoice?", message_id=9, edited=True)
    assert await post_update(webhook, edit) == 200
    await post_update(webhook, telegram_api.text_update("How long is the warranty?"))
    sent = await telegram_api.wait_for_sent(2)
    assert "warranty" in sent[1].text.lower() and len(sent) == 2
    async with webhook.db.read() as repo:
        first = (await repo.messages(1))[0]
    assert first.text == "How do I get an invoice?" and first.edited_at is not None


async def test_a_photo_is_stored_and_handed_to_a_person(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    await webhook.add_agent("ana")
    assert await post_update(webhook, telegram_api.photo_update("It arrived like this")) == 200
    [notice] = await telegram_api.wait_for_sent(1)
    assert "will answer by" in notice.text
    _, detail = await webhook.api("ana", "GET", "/api/agent/conversations/1")
    assert detail["handoffs"][0]["reason"] == "attachment"
    [attachment] = detail["messages"][0]["attachments"]
    assert attachment["content_type"] == "image/jpeg" and attachment["size"] > 0
    stored = webhook.config.server.data_dir / "attachments" / "telegram" / "555"
    assert [p.read_bytes() for p in stored.iterdir()] == [telegram_api.files["photos/file_1.jpg"]]


async def test_flood_control_waits_as_told_and_delivers_once(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    telegram_api.fail_next(429, retry_after=2)
    started = time.monotonic()
    await post_update(webhook, telegram_api.text_update("How do I get an invoice?"))
    [delivered] = await telegram_api.wait_for_sent(1, within=15)
    assert time.monotonic() - started >= 2.0
    assert "invoice" in delivered.text.lower()
    assert telegram_api.send_attempts == 2


async def test_a_blocked_bot_is_dead_at_once_and_the_contact_unreachable(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    await webhook.add_agent("ana")
    telegram_api.fail_next(403)
    async with webhook.events.subscribe() as events:
        await post_update(webhook, telegram_api.text_update("How do I get an invoice?"))
        while not getattr(await events.get(), "dead", False):
            pass
    _, dead = await webhook.api("ana", "GET", "/api/agent/deliveries?status=dead")
    assert dead["deliveries"][0]["attempts"] == 1
    assert "blocked" in dead["deliveries"][0]["last_error"]
    _, detail = await webhook.api("ana", "GET", "/api/agent/conversations/1")
    assert detail["contact"]["identities"][0]["unreachable_at"] is not None
    assert telegram_api.send_attempts == 1


async def test_a_long_answer_is_split_into_messages(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    paragraphs = "\n\n".join(f"Step {i}: " + " ".join(["check the filter."] * 50) for i in range(6))
    entry = {"id": "manual", "questions": ["How do I clean the filter?"], "answer": paragraphs}
    (kb / "long.yaml").write_text(yaml.safe_dump([entry]), encoding="utf-8")
    overrides = telegram_overrides(telegram_api, "webhook")
    overrides["knowledge"] = {"path": str(kb)}
    async with running_service(tmp_path, overrides=overrides) as service:
        assert len(paragraphs) > 5000
        await post_update(service, telegram_api.text_update("How do I clean the filter?"))
        sent = await telegram_api.wait_for_sent(2)
        assert len(sent) == 2 and all(len(m.text) <= 4096 for m in sent)
        assert sent[0].text.startswith("Step 0") and sent[1].text.startswith("Step")
        assert "\n\n".join(m.text for m in sent) == paragraphs


async def test_polling_answers_and_confirms_only_what_was_stored(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    overrides = telegram_overrides(telegram_api, "polling")
    update = telegram_api.text_update("How long is the warranty?", message_id=77)
    async with running_service(tmp_path / "one", overrides=overrides):
        await telegram_api.push(update)
        [answer] = await telegram_api.wait_for_sent(1)
        assert "warranty" in answer.text.lower()
        await telegram_api.wait_until_confirmed(update["update_id"])
        await telegram_api.push(telegram_api.text_update("return"))
        clarify = (await telegram_api.wait_for_sent(2))[-1]
        await telegram_api.push(telegram_api.button_update(clarify, "How to return an item"))
        chosen = (await telegram_api.wait_for_sent(3))[-1]
        assert "After-sales service" in chosen.text
        await telegram_api.wait_for_callback_answers(1)

    # The process died after storing but before Telegram heard back: Telegram sends the
    # update again to the restarted process, which stores and answers nothing twice.
    overrides["storage"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'one' / 'relaydesk.db'}"}
    async with running_service(tmp_path / "two", overrides=overrides) as restarted:
        await telegram_api.push(update)
        await telegram_api.wait_until_confirmed(update["update_id"])
        await telegram_api.push(telegram_api.text_update("How do I get an invoice?"))
        sent = await telegram_api.wait_for_sent(4)
        assert "invoice" in sent[3].text.lower() and len(sent) == 4
        async with restarted.db.read() as repo:
            customer = [m.text for m in await repo.messages(1) if m.author_kind == "customer"]
        assert customer == [
            "How long is the warranty?",
            "return",
            "How to return an item",
            "How do I get an invoice?",
        ]


async def test_polling_does_not_confirm_an_update_that_was_not_stored(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    stored: list[InboundMessage] = []
    crashes = 1

    async def ingest(inbound: InboundMessage) -> InboundReceipt:
        nonlocal crashes
        if crashes:
            crashes -= 1
            raise ConnectionError("database went away before commit")
        stored.append(inbound)
        return InboundReceipt(conversation_id=1, message_id=len(stored))

    channel = TelegramChannel(
        settings=TelegramSettings(
            token=telegram_api.token,
            mode="polling",
            api_base_url=telegram_api.base_url,
            poll_timeout_seconds=1,
        ),
        attachments_dir=tmp_path,
    )
    update = telegram_api.text_update("How long is the warranty?")
    await telegram_api.push(update)
    await channel.start(ingest)
    try:
        await telegram_api.wait_until_confirmed(update["update_id"])
    finally:
        await channel.stop()
    assert [m.text for m in stored] == ["How long is the warranty?"]
    assert crashes == 0


async def test_set_webhook_registers_the_url_and_secret(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    make_config(tmp_path, telegram_overrides(telegram_api, "webhook"))
    url = "https://support.example.com/telegram/webhook"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router.cli", "--config", str(tmp_path / "config.yaml"),
        "telegram", "set-webhook", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert telegram_api.webhook == {"url": url, "secret_token": SECRET}
    assert url in out.decode()


async def test_a_shared_contact_reaches_the_agent(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    await webhook.add_agent("ana")
    contact = {"phone_number": "+8613800000000", "first_name": "Mei", "user_id": 555}
    await post_update(webhook, telegram_api.text_update("", contact=contact))
    [notice] = await telegram_api.wait_for_sent(1)
    assert "will answer by" in notice.text
    _, detail = await webhook.api("ana", "GET", "/api/agent/conversations/1")
    shared = detail["messages"][0]
    assert "+8613800000000" in shared["text"] and shared["extras"]["phone"] == "+8613800000000"


@pytest.mark.postgres
async def test_with_two_nodes_polling_one_polls_at_a_time_and_answers_once(
    tmp_path: Path, telegram_api: FakeTelegram, postgres: Database
) -> None:
    overrides = telegram_overrides(telegram_api, "polling")
    async with (
        running_service(tmp_path / "a", overrides=overrides, database=postgres),
        running_service(tmp_path / "b", overrides=overrides, database=postgres),
    ):
        update = telegram_api.text_update("How long is the warranty?", message_id=91)
        await telegram_api.push(update)
        [answer] = await telegram_api.wait_for_sent(1)
        assert "warranty" in answer.text.lower()
        await telegram_api.wait_until_confirmed(update["update_id"])
        await telegram_api.push(telegram_api.text_update("How do I get an invoice?"))
        sent = await telegram_api.wait_for_sent(2)
        assert "invoice" in sent[1].text.lower()
        # Long polls of a second each, several in a row: two pollers would have overlapped.
        await telegram_api.wait_for_polls(telegram_api.polls + 4)
    assert telegram_api.most_pollers == 1
    assert len(telegram_api.sent) == 2


async def test_the_customer_sees_the_agent_typing_in_telegram_throttled(
    webhook: Service, telegram_api: FakeTelegram
) -> None:
    service, fake = webhook, telegram_api
    await service.add_agent("ana")
    await post_update(service, fake.text_update("/human"))
    await fake.wait_for_sent(1)
    _, queue = await service.api("ana", "GET", "/api/agent/conversations?status=queued")
    cid = queue["conversations"][0]["id"]
    # Only the owner's typing shows.
    status, _ = await service.api("ana", "POST", f"/api/agent/conversations/{cid}/typing")
    assert status == 409
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    status, _ = await service.api("ana", "POST", f"/api/agent/conversations/{cid}/typing")
    assert status == 202
    await fake.wait_for_chat_actions(1)
    assert fake.chat_actions == [(555, "typing")]
    # Telegram shows it for 5 s: asking again within 4 s sends nothing more.
    channel = service.app[CHANNELS]["telegram"]
    await channel.show_typing("555")
    await channel.show_typing("not a chat")
    assert fake.chat_actions == [(555, "typing")]
    await channel.show_typing("556")
    assert fake.chat_actions == [(555, "typing"), (556, "typing")]
