"""Every inbox page is usable on a phone (390 px) and a wide screen (1440 px): nothing
runs off the side, the navigation reads as words, the transcript is wide enough to
read, and codes are shown in the agent's language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.support.inbox import add_inbox_agent
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Li Wei", admin=True)
        memory = service.memory
        await memory.inject(
            memory.message("我家猫把遥控器咬坏了，能换一个吗？" * 3, external_id="p1")
        )
        yield service


async def fits(page: Page, width: int) -> None:
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width + 1, f"{page.url}: {scroll}px wide on a {width}px screen"
    for link in await page.locator("header.top nav a").all():
        box = await link.bounding_box()
        assert box is not None and box["height"] < 40, "a navigation link wraps letter by letter"


@pytest.mark.parametrize("size", list(SIZES))
async def test_every_inbox_page_fits_the_screen(desk: Service, browser: Browser, size: str) -> None:
    width = SIZES[size]["width"]
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Li Wei", watch)
    await fits(page, width)
    await page.screenshot(path=str(ARTIFACTS / f"queue-{size}.png"))
    await page.locator("#queue-rows a").first.click()
    transcript = await page.locator("#messages").bounding_box()
    assert transcript is not None and transcript["width"] >= min(width * 0.8, 600)
    await fits(page, width)
    await page.screenshot(path=str(ARTIFACTS / f"conversation-{size}.png"), full_page=True)
    for path in (
        "/inbox/reports",
        "/inbox/reports/gaps",
        "/inbox/admin",
        "/inbox/admin/sla",
        "/inbox/admin/audit",
        "/inbox/admin/routing",
        "/inbox/canned",
    ):
        await page.goto(str(desk.client.make_url(path)))
        await fits(page, width)
    # Codes in the agent's language.
    await page.goto(str(desk.client.make_url("/inbox?tab=unassigned")))
    await page.locator("#switch-language").click()
    await page.locator("#queue-rows a").first.click()
    await expect(page.locator("#status")).to_have_text("排队中")
    await expect(page.locator("[data-reason]").first).to_have_text("把握不足")
    # And in traditional script, where every page still fits.
    await page.locator("#switch-script").click()
    await expect(page.locator("html")).to_have_attribute("lang", "zh-TW")
    await expect(page.locator("#status")).to_have_text("排隊中")
    await fits(page, width)
    await page.goto(str(desk.client.make_url("/inbox/reports")))
    await fits(page, width)
    assert watch.problems == []
