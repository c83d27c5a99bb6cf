"""The reports page in a real browser at phone and desktop widths: charts drawn with
ECharts, a definition a click away, a drill-down to the conversations behind a bar,
words in the agent's language; screenshots go to tests/artifacts (docs/ with `make screenshots`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_inbox_page import Watch, sign_in
from tests.support.inbox import add_inbox_agent
from tests.support.screens import screenshot
from tests.support.service import Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Lead")
        async with service.db.write() as repo:
            lead = await repo.agent_by_name("Lead")
            assert lead is not None
        from sqlalchemy import update

        from router.storage.models import AgentRow

        async with service.db.write() as repo:
            await repo.session.execute(update(AgentRow).values(role="lead"))
        memory = service.memory
        for n, text in enumerate(
            ["How long is the warranty?", "talk to a person", "转人工", "How do I get an invoice?"]
        ):
            await memory.inject(memory.message(text, external_id=f"h{n}", sender=f"c{n}"))
        yield service


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_lead_reads_the_reports_and_drills_into_a_bar(
    desk: Service, browser: Browser, size: str
) -> None:
    watch = Watch()
    context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Lead", watch)
    await page.locator("#reports-link").click()
    await expect(page.locator("body[data-charts='6']")).to_have_count(1)
    await expect(page.locator("#total-conversations")).to_have_text("4")
    await expect(page.locator("#chart-outcomes svg")).to_have_count(1)
    # One "what this counts" under the bot's table, saying what both figures count.
    await expect(page.locator("#bot table.figures + details.definition")).to_have_count(1)
    definition = page.locator("#bot details.definition").first
    await definition.locator("summary").click()
    await expect(definition).to_contain_text("did not write again")
    await expect(definition.locator("p")).to_have_count(2)
    await expect(page.locator("#volume .big")).to_contain_text("4 conversations")
    # Promises by policy and by agent are two tables, each saying what its rows are.
    await expect(page.locator("#sla-table thead th").first).to_have_text("Policy")
    await expect(page.locator("#sla-agents thead th").first).to_have_text("Agent")
    # Every label of the bot's charts is inside its chart, whole.
    for chart in ("#chart-outcomes", "#chart-reasons"):
        clipped = await page.evaluate(
            """(selector) => {
                const box = document.querySelector(selector).getBoundingClientRect();
                return [...document.querySelectorAll(selector + ' svg text')]
                    .map((t) => [t.textContent, t.getBoundingClientRect()])
                    .filter(([, r]) => r.width > 0
                        && (r.left < box.left - 1 || r.right > box.right + 1))
                    .map(([text]) => text);
            }""",
            chart,
        )
        assert clipped == [], f"{chart}: labels cut at the edge: {clipped}"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES[size]["width"] + 1, "nothing runs off the screen"
    await page.screenshot(path=str(screenshot(f"reports-{size}.png")), full_page=True)

    await page.locator('[data-outcome="handed_off"] a').click()
    await expect(page.locator("#drill tr.row")).to_have_count(2)

    await page.goto(str(desk.client.make_url("/inbox/reports")))
    await page.locator("#switch-language").click()
    await expect(page.locator('[data-outcome="handed_off"] th')).to_have_text("转人工")
    assert watch.problems == []


async def test_a_hostile_choice_or_tag_cannot_break_the_page(
    desk: Service, browser: Browser
) -> None:
    """A choice id or a tag holding ``<!--<script>`` stays data inside the page's JSON."""
    memory = desk.memory
    hostile = "<!--<script>"
    await memory.inject(
        memory.message("return", external_id="x1", sender="attacker", choice=hostile)
    )
    watch = Watch()
    context = await browser.new_context(viewport=SIZES["desktop"])  # type: ignore[arg-type]
    page = await sign_in(context, desk, "Lead", watch)
    await page.goto(str(desk.client.make_url("/inbox/reports")))
    await expect(page.locator("body[data-charts='6']")).to_have_count(1)
    await expect(page.locator("#total-conversations")).to_have_text("5")
    choices = await page.evaluate(
        "JSON.parse(document.getElementById('report-data').textContent).figures.bot.choices_taken"
    )
    assert hostile in choices, "the choice is shown as it was sent, as data"

    await page.goto(str(desk.client.make_url("/inbox/reports?tag=" + quote(hostile))))
    await expect(page.locator("body[data-charts='6']")).to_have_count(1)
    await expect(page.locator("input[name=tag]")).to_have_value(hostile)
    assert watch.problems == []
