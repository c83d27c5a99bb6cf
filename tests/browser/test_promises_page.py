"""Promises in the agents' inbox: a warning arrives live (a line, a browser
notification, a badge, the "at risk" filter), the conversation shows its clock, and
an agent schedules and cancels a reminder — at phone and desktop widths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect

from router.keys import SCHEDULER
from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.support.clock import FakeClock
from tests.support.inbox import add_inbox_agent
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIZES = {"phone": {"width": 390, "height": 800}, "desktop": {"width": 1280, "height": 860}}
# Records the notifications the page raises (the real one needs a desktop to show on).
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notes.push(options.body); }
};
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
async def desk(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Service]:
    overrides = {
        "sla": {
            "timezone": "Asia/Shanghai",
            "calendars": {"default": {"hours": {"daily": "09:00-21:00"}}},
            "policies": [
                {"name": "chat", "first_response": "1h", "resolution": "8h", "warn_before": "10m"}
            ],
        }
    }
    async with running_service(
        tmp_path / "svc", overrides=overrides, clock=clock, drive_sweeps=True
    ) as service:
        await add_inbox_agent(service, "Ana")
        yield service


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_warning_reaches_the_agent_live_and_the_conversation_shows_its_clock(
    desk: Service, browser: Browser, clock: FakeClock, size: str
) -> None:
    memory = desk.memory
    receipt = await memory.inject(memory.message("I want to talk to a person", external_id="w1"))
    cid = receipt.conversation_id
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    await context.add_init_script(RECORD_NOTIFICATIONS)
    page = await sign_in(context, desk, "Ana", watch)
    row = page.locator(f'tr[data-conversation="{cid}"]')
    await expect(row).to_be_visible()
    await expect(row.locator("[data-alert]")).to_have_count(0)

    clock.set(datetime(2026, 11, 26, 10, 50, tzinfo=SHANGHAI))
    [warning] = (await desk.app[SCHEDULER].run_due()).alerts
    assert warning.level == "warning"
    line = page.locator("#alerts .alert").first
    await expect(line).to_contain_text(f"#{cid} due soon")
    await expect(row.locator("[data-alert=warning]")).to_have_text("due soon")
    assert await page.evaluate("window.__notes") == [f"#{cid} due soon · first response"]

    await page.get_by_label("at risk only").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#queue-rows tr.row")).to_have_count(1)

    await page.locator(f'tr[data-conversation="{cid}"] a').first.click()
    await expect(page.locator("#promises [data-metric=first_response]")).to_have_attribute(
        "data-state", "warning"
    )
    await expect(page.locator("#promises [data-metric=resolution]")).to_contain_text("11-26 18:00")
    await page.locator("#schedule-form select[name=minutes]").select_option("30")
    await page.locator("#schedule-form input[name=text]").fill("Call the customer back")
    await page.locator("#schedule-form button").click()
    item = page.locator("#later li.scheduled-pending")
    await expect(item).to_contain_text("Call the customer back")
    await page.screenshot(path=str(ARTIFACTS / f"promises-{size}.png"), full_page=True)
    await item.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#later li.scheduled-cancelled")).to_contain_text("cancelled")
    assert watch.problems == []


@pytest.mark.parametrize("size", list(SIZES))
async def test_an_admin_adds_a_day_off_on_the_admin_page(
    desk: Service, browser: Browser, size: str
) -> None:
    await add_inbox_agent(desk, "Lead", admin=True)
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Lead", watch)
    await page.goto(str(desk.client.make_url("/inbox/admin")))
    await page.locator("#sla-link").click()
    await expect(page.locator("tr[data-calendar=default]")).to_contain_text("Asia/Shanghai")
    text = page.locator("#sla-text")
    original = await text.input_value()
    assert "09:00-21:00" in original

    await text.fill(original.replace("09:00-21:00", "9 to 5"))
    await page.locator("#sla-save").click()
    await expect(page.locator("#sla-errors")).to_contain_text("sla.calendars.default")
    await expect(text).to_have_value(original.replace("09:00-21:00", "9 to 5"))

    await text.fill(original.replace("holidays: []", "holidays: ['2026-11-26']"))
    await page.locator("#sla-save").click()
    await expect(page.locator("#saved")).to_be_visible()
    await expect(page.locator("tr[data-calendar=default]")).to_contain_text("2026-11-27 09:00")
    await page.screenshot(path=str(ARTIFACTS / f"admin-sla-{size}.png"), full_page=True)
    memory = desk.memory
    await memory.inject(memory.message("talk to a person", external_id="after-edit"))
    [ack] = await memory.wait_for_sent(1)
    assert "open at 09:00 tomorrow" in ack.text
    assert watch.problems == []
