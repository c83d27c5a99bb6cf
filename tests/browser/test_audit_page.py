"""An admin reads who did what in the inbox, when and from where."""

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
async def test_an_admin_sees_a_claim_made_in_the_inbox(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Li Wei", admin=True)
        memory = service.memory
        receipt = await memory.inject(memory.message("转人工", external_id="aud-1"))
        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)
        await page.goto(str(service.client.make_url(f"/inbox/c/{receipt.conversation_id}")))
        await page.locator("#claim").click()
        await expect(page.locator("#status")).to_have_attribute("data-status", "assigned")
        await page.goto(str(service.client.make_url("/inbox/admin")))
        await page.locator("#audit-link").click()
        row = page.locator("table.audit tr[data-action='claim']")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Li Wei")
        await expect(row).to_contain_text("inbox 127.0.0.1")
        await expect(row.get_by_role("link", name=f"#{receipt.conversation_id}")).to_be_visible()
        await expect(page.locator("table.audit tr[data-action='sign_in']")).to_have_count(1)
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"admin-audit-{size}.png"), full_page=True)
        assert watch.problems == []
