"""The knowledge-base gap loop in a real browser, at phone and desktop widths: the
questions the bot could not answer are grouped, an admin publishes a drafted entry
from the agents' answer, and the next customer asking it gets the bot's answer."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from knowledge import learn, suggest_synonyms
from router.keys import BOT, RELOAD_BOT
from tests.browser.test_inbox_page import Watch, sign_in
from tests.support.inbox import add_inbox_agent
from tests.support.screens import screenshot
from tests.support.service import DEMO_KB, Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
ASKED = [
    "can I buy a gift card for my friend",
    "how do I buy a gift card for someone",
    "gift card for a friend, how?",
]
DAMAGED = "很抱歉！请在签收后 48 小时内拍下外包装"  # the damaged-parcel entry's answer
ANSWER = "Gift cards are sold in our app under Me → Gift cards, from 50 to 2000 yuan."


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Service]:
    kb = tmp_path / "kb"
    shutil.copytree(DEMO_KB, kb)
    overrides = {"knowledge": {"path": str(kb), "reload_seconds": 0}}
    async with running_service(tmp_path / "svc", overrides=overrides) as service:
        await add_inbox_agent(service, "Lead", admin=True)
        await service.add_agent("ana")
        memory = service.memory
        for n, text in enumerate(ASKED):
            receipt = await memory.inject(memory.message(text, external_id=f"g{n}", sender=f"c{n}"))
            one = f"/api/agent/conversations/{receipt.conversation_id}"
            await service.api("ana", "POST", one + "/claim")
            await service.api(
                "ana", "POST", one + "/reply", json={"text": "Hello, this is Ana. " + ANSWER}
            )
        yield service


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_admin_turns_a_gap_into_an_answer(
    desk: Service, browser: Browser, size: str
) -> None:
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Lead", watch)
    await page.goto(str(desk.client.make_url("/inbox/reports")))
    await page.locator("#gaps-link").click()
    gap = page.locator(".gap").first
    await expect(gap.locator(".examples li")).to_have_count(3)
    await expect(gap.locator(".answers li").first).to_contain_text(ANSWER)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES[size]["width"] + 1
    await page.screenshot(path=str(screenshot(f"kb-gaps-{size}.png")), full_page=True)
    answer = gap.locator("textarea[name=answer]")
    await expect(answer).to_have_value(ANSWER)  # the agents' answer, without "Hello, this is Ana."
    await answer.fill(ANSWER + " ")
    async with desk.relearned():
        await gap.get_by_role("button", name="Publish").click()
        await expect(page.locator("#notice")).to_contain_text("the bot learns it in a moment")

    memory = desk.memory
    before = len(memory.sent)
    await memory.inject(memory.message("how can I buy a gift card", external_id="new", sender="z"))
    reply = (await memory.wait_for_sent(before + 1))[-1]
    assert reply.kind == "answer" and "Gift cards are sold" in reply.text
    assert watch.problems == []


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_admin_accepts_a_word_customers_use(
    desk: Service, browser: Browser, size: str, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    matcher = desk.app[BOT].matcher
    entry = matcher.entry("repair-booking")
    assert entry is not None
    learn(kb, question="我的洗衣机趴窝了要修", answer="", extends=entry.id)
    suggest_synonyms(
        kb,
        ["我的洗衣机趴窝了要修"],
        entry.questions,
        entry=entry.id,
        knowledge_base=[q for e in matcher.entries for q in e.questions],
        same=matcher.normaliser.fold,
    )
    await desk.app[RELOAD_BOT]()
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Lead", watch)
    await page.goto(str(desk.client.make_url("/inbox/reports/gaps")))
    suggestion = page.locator("#synonym-suggestions .suggestion")
    await expect(suggestion).to_have_count(1)
    await expect(suggestion).to_contain_text("趴窝了 = 坏了")
    await expect(suggestion).to_contain_text("我的洗衣机趴窝了要修")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES[size]["width"] + 1
    await page.screenshot(path=str(screenshot(f"kb-synonyms-{size}.png")), full_page=True)
    async with desk.relearned():
        await suggestion.get_by_role("button", name="Accept").click()
        await expect(page.locator("#notice")).to_contain_text("趴窝了 now reads as 坏了")
    await expect(page.locator("#synonym-suggestions")).to_have_count(0)

    memory = desk.memory
    before = len(memory.sent)
    await memory.inject(memory.message("收到的时候东西就趴窝了", external_id="w", sender="w"))
    reply = (await memory.wait_for_sent(before + 1))[-1]
    assert reply.kind == "answer" and reply.text.startswith(DAMAGED)
    assert watch.problems == []
