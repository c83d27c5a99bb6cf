"""Agent assist in a real browser: a resolved conversation like the open one is shown
under the reply box, and its reply goes into the box, editable, at phone and desktop
widths."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.router.desk.test_assist import LEAK_REPLY, _handed_off, _resolved_case
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_similar_resolved_case_puts_its_reply_in_the_box(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc") as service:
        await service.add_agent("ana")
        await add_inbox_agent(service, "Li Wei")
        leak, _ = await _resolved_case(
            service, "ana", "c-leak", "洗衣机底下一直在漏水，能不能派个人来家里修一下", LEAK_REPLY
        )
        current = await _handed_off(service, "c-now", "洗衣機漏水，可以請師傅到家裡來看看嗎")
        sent_before = len(service.memory.sent)
        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)
        await page.goto(str(service.client.make_url(f"/inbox/c/{current}")))
        await page.locator("#claim").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "assigned")

        panel = page.locator("#similar")
        await expect(panel).to_be_visible()
        case = panel.locator(f".similar-case[data-conversation='{leak}']")
        await expect(case).to_be_visible()
        await expect(case.locator(".similar-question")).to_contain_text("漏水")
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"assist-{size}.png"), full_page=True)

        await case.locator(".similar-use").click()
        box = page.locator("#reply-text")
        suggestion = "可以的，我們會安排維修師傅48小時內上門檢修，上門費全免。"
        await expect(box).to_have_value(suggestion)
        await expect(box).to_be_focused()
        # It is the agent's reply now: they edit it before sending.
        await box.press("End")
        await box.type("請留意來電。")
        await page.locator("#send-reply").click()
        sent = await service.memory.wait_for_sent(sent_before + 1)
        assert sent[-1].text == suggestion + "請留意來電。"
        assert watch.problems == []
        await context.close()
