"""A support lead with two teams: the queue per team, why a conversation is in its team,
a transfer to the other team, and the rules edited on the admin page."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUTING = {
    "teams": {
        "repairs": {"name": "Repairs", "members": ["Li Wei"]},
        "billing": {"name": "Billing", "members": ["Ana"]},
    },
    "rules": [
        {"name": "Repairs", "when": {"keywords": ["修"]}, "then": {"team": "repairs"}},
        {"name": "Invoices", "when": {"keywords": ["发票"]}, "then": {"team": "billing"}},
    ],
}


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_lead_works_the_team_queues_and_edits_the_rules(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc", overrides={"routing": ROUTING}) as service:
        await add_inbox_agent(service, "Li Wei", admin=True)
        await add_inbox_agent(service, "Ana")
        memory = service.memory
        invoice = await memory.inject(memory.message("转人工，我的发票开错了", external_id="t1"))
        await memory.inject(memory.message("talk to a person", external_id="t2", sender="b"))
        watch = Watch()
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        page = await sign_in(context, service, "Li Wei", watch)

        # The team tabs: mine first; Billing shows only the invoice.
        tabs = page.locator("#team-tabs")
        await expect(tabs.locator("a")).to_have_text(
            ["Every team", "My teams", "Repairs", "Billing"]
        )
        await expect(page.locator("#queue-rows tr.row")).to_have_count(2)
        await tabs.get_by_role("link", name="Billing").click()
        rows = page.locator("#queue-rows tr.row")
        await expect(rows).to_have_count(1)
        await expect(rows.first.locator(".badge.team")).to_have_text("Billing")
        await fits(page, SIZES[size]["width"])
        await tabs.get_by_role("link", name="My teams").click()
        await expect(page.locator("#queue-rows td.empty")).to_have_count(1)

        # Why it is Billing's, and a transfer to Repairs.
        await page.goto(str(service.client.make_url(f"/inbox/c/{invoice.conversation_id}")))
        await expect(page.locator(".handoff .routed")).to_have_text(
            "Routed to Billing by rule 2 (Invoices)"
        )
        await expect(page.locator("#team")).to_have_text("Billing")
        await page.locator("#team-select").select_option(label="Repairs")
        await page.locator("#assign-form button").click()
        await expect(page.locator("#team")).to_have_text("Repairs")
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"teams-conversation-{size}.png"))

        # The rules on the admin page; a rule naming no team is refused with the reason.
        await page.goto(str(service.client.make_url("/inbox/admin")))
        await page.locator("#routing-link").click()
        await expect(page.locator("tr[data-team=billing]")).to_contain_text("Ana")
        await expect(page.locator("li[data-rule='2']")).to_contain_text("发票")
        text = page.locator("#routing-text")
        original = await text.input_value()
        await text.fill(original.replace("team: billing", "team: refunds"))
        await page.locator("#routing-save").click()
        await expect(page.locator("#routing-errors")).to_contain_text(
            "team 'refunds' is not in routing.teams"
        )
        await text.fill(original.replace("- 修", "- 坏了"))
        await page.locator("#routing-save").click()
        await expect(page.locator("#saved")).to_be_visible()
        await expect(page.locator("li[data-rule='1']")).to_contain_text("坏了")
        await fits(page, SIZES[size]["width"])
        await page.screenshot(path=str(ARTIFACTS / f"admin-routing-{size}.png"), full_page=True)
        assert watch.problems == []
        await context.close()
