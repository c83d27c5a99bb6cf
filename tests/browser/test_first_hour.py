"""What a new team meets on a phone in its first hour (issue 33, item 5): the
conversation page fits, queue cards say what each line is, an anonymous visitor has a
name of their own, and a follow-up due at night says when it will really go out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect

from router.keys import CLOCK
from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.router.inbox.test_inbox_web import handed_off
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOURS = {
    "sla": {
        "timezone": "Asia/Shanghai",
        "calendars": {"default": {"hours": {"daily": "09:00-18:00"}}},
    }
}


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_anonymous_visitor_s_conversation_reads_on_every_screen(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    width = SIZES[size]["width"]
    async with running_service(tmp_path / "svc", overrides=HOURS) as service:
        await add_inbox_agent(service, "Li Wei", admin=True)
        await service.add_agent("ana")
        visitor, cid = await handed_off(service, "我家的洗衣机漏水了，地板全湿了，转人工")
        path = f"/api/agent/conversations/{cid}"
        await service.api("ana", "POST", path + "/claim")
        await service.api(
            "ana", "POST", path + "/reply", json={"text": "您好，我们明天上午派师傅上门检修。"}
        )
        await visitor.reply()
        # A follow-up due at 23:30 tonight, Shanghai time: the desk is closed then.
        shanghai = service.app[CLOCK]().astimezone(ZoneInfo("Asia/Shanghai"))
        night = (shanghai + timedelta(days=1)).replace(hour=23, minute=30, second=0)
        night = night.replace(microsecond=0).isoformat()
        status, _ = await service.api(
            "ana", "POST", path + "/scheduled", json={"kind": "follow_up", "due_at": night}
        )
        assert status == 201

        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)
        await page.goto(str(service.client.make_url("/inbox?tab=open")))
        card = page.locator(f"#queue-rows tr[data-conversation='{cid}']")
        customer = (await card.locator("td.customer").inner_text()).strip()
        assert customer.startswith("Visitor ") and customer != f"#{cid}"
        if size == "phone":
            # Each small line of a card says what it is.
            for cell, name in (("waiting", "Waiting"), ("language", "Language"), ("due", "Due")):
                label = await card.locator(f"td.{cell}").evaluate(
                    "(td) => getComputedStyle(td, '::before').content"
                )
                assert name in label, f"the {cell} line of a card is not named"
        await fits(page, width)
        await page.screenshot(path=str(ARTIFACTS / f"first-hour-queue-{size}.png"))

        await card.locator("a").first.click()
        await expect(page.locator(".contact-name")).to_have_text(customer)
        await fits(page, width)
        # Save as FAQ: the answer box is wide enough to read, its button on screen.
        faq = page.locator(".faq-form").first
        answer = await faq.locator("textarea").bounding_box()
        button = await faq.locator("button").bounding_box()
        assert answer is not None and answer["width"] >= min(200, width * 0.5)
        assert button is not None and button["x"] + button["width"] <= width
        # The follow-up says it waits for the desk to open.
        later = page.locator("#later li.scheduled-pending")
        await expect(later).to_contain_text("goes out when it opens")
        await expect(later).to_contain_text("09:00")
        # The Later panel's note field shows its hint whole.
        hint = page.locator("#schedule-form input[name=text]")
        fits_hint = await hint.evaluate(
            "(el) => { const c = document.createElement('canvas').getContext('2d');"
            " c.font = getComputedStyle(el).font;"
            " return c.measureText(el.placeholder).width <= el.clientWidth; }"
        )
        assert fits_hint, "the note field's placeholder is cut"
        await page.screenshot(
            path=str(ARTIFACTS / f"first-hour-conversation-{size}.png"), full_page=True
        )
        assert watch.problems == []
        await visitor.close()
        await context.close()
