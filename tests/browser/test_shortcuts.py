"""An agent works the queue from the keyboard: the help overlay, moving through the
list, opening, claiming, replying, sending and on to the next conversation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_queue_is_worked_from_the_keyboard(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Li Wei")
        memory = service.memory
        first = await memory.inject(
            memory.message("talk to a person", external_id="k1", sender="a")
        )
        second = await memory.inject(memory.message("转人工", external_id="k2", sender="b"))
        await memory.wait_for_sent(2)
        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)
        await expect(page.locator("#queue-rows tr.row")).to_have_count(2)

        await page.keyboard.press("?")
        help = page.locator("#shortcuts")
        await expect(help).to_be_visible()
        await expect(help.locator("dt")).to_have_count(10)
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"shortcuts-{size}.png"))
        await page.keyboard.press("Escape")
        await expect(help).to_be_hidden()

        await page.keyboard.press("j")
        await expect(page.locator("#queue-rows tr.row.selected")).to_have_attribute(
            "data-conversation", str(first.conversation_id)
        )
        await page.keyboard.press("o")
        await expect(page).to_have_url(re.compile(f"/inbox/c/{first.conversation_id}$"))
        await page.keyboard.press("c")
        await expect(page.locator("#status")).to_have_attribute("data-status", "assigned")
        await page.keyboard.press("r")
        await expect(page.locator("#reply-text")).to_be_focused()
        await page.keyboard.type("On it.")
        await page.keyboard.press("Control+Enter")
        sent = await memory.wait_for_sent(3)
        assert sent[-1].text == "On it."
        await expect(page.locator("#reply-text")).to_have_value("")
        await page.locator("body").click(position={"x": 5, "y": 5})
        await page.keyboard.press("n")
        await expect(page).to_have_url(re.compile(f"/inbox/c/{second.conversation_id}$"))
        assert watch.problems == []
        await context.close()
