"""An agent saves a macro, finds it from the reply box, and sending it resolves the
conversation with the macro's tag: in a real browser, phone and desktop."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_saved_macro_fills_the_reply_and_resolves(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Li Wei")
        memory = service.memory
        receipt = await memory.inject(
            memory.message("转人工，退款还没到", external_id="c-1", sender="Mei")
        )
        await memory.wait_for_sent(1)
        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)

        await page.locator("#canned-link").click()
        await page.locator("#saved-title").fill("Refund sent")
        await page.locator("#saved-text").fill("{customer_name}, the refund of {ticket} is sent.")
        await page.locator("#saved-tags").fill("refund")
        await page.locator("#saved-resolve").check()
        await page.locator("#saved-save").click()
        saved = page.locator("#saved-replies li[data-scope=mine]")
        await expect(saved).to_have_count(1)
        await expect(saved.locator(".badge.macro")).to_be_visible()
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"canned-{size}.png"), full_page=True)

        await page.goto(str(service.client.make_url(f"/inbox/c/{receipt.conversation_id}")))
        await page.locator("#claim").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "assigned")
        await page.locator("#canned-search").fill("refnd")
        await page.locator(".canned-macro").click()
        filled = f"Mei, the refund of #{receipt.conversation_id} is sent."
        await expect(page.locator("#reply-text")).to_have_value(filled)
        await expect(page.locator("#macro-note")).to_contain_text("+refund")
        await page.locator("#send-reply").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "resolved")
        await expect(page.locator(".tag")).to_have_text(["refund"])
        sent = await memory.wait_for_sent(2)
        assert sent[1].text == filled
        assert watch.problems == []
        await context.close()
