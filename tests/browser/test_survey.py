"""The satisfaction survey as customers see it: stars in the chat window, and the page
behind a survey mail's link, at phone and desktop widths."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from router.keys import AFTERCARE
from tests.browser.test_chat_page import ARTIFACTS, chat
from tests.support.service import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 800}}


async def rating(service: Service, conversation_id: int) -> dict[str, object]:
    status, detail = await service.api("ana", "GET", f"/api/agent/conversations/{conversation_id}")
    assert status == 200
    return dict(detail["satisfaction"])


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_customer_rates_with_stars_in_the_chat_and_adds_a_comment(
    sqlite_service: Service, browser: Browser, size: str
) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    page = await browser.new_page(viewport=SIZES[size])  # type: ignore[arg-type]
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(str(service.client.make_url("/chat")))
    await expect(page.locator("#status")).to_have_text("online")
    # The box's hint is one line, in one language.
    assert await page.locator("#text").get_attribute("placeholder") == "Type your question…"
    # A few answers first: the chat is taller than the window.
    for question in ("How long is the warranty?", "How do I get an invoice?", "怎么申请退货？"):
        await chat(page, question)
        await expect(page.locator(".msg.bot").last).to_be_visible()
    await chat(page, "talk to a person")
    await expect(page.locator(".msg.system").last).to_contain_text("will answer by")

    _, queue = await service.api("ana", "GET", "/api/agent/conversations?status=queued")
    [waiting] = queue["conversations"]
    cid = waiting["id"]
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await service.api(
        "ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "Done for you."}
    )
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")

    stars = page.locator(".msg[data-kind=survey] .star")
    await expect(stars).to_have_count(5)
    # After a reload the chat opens at its newest message: the stars above the box.
    await page.reload()
    await expect(stars).to_have_count(5)
    await expect(stars.nth(4)).to_be_in_viewport()
    composer = await page.locator("#composer").bounding_box()
    star = await stars.nth(4).bounding_box()
    assert composer is not None and star is not None
    assert star["y"] + star["height"] <= composer["y"] + 1
    box = await stars.nth(4).bounding_box()
    assert box is not None and box["width"] >= 40 and box["height"] >= 40  # a thumb's size
    await stars.nth(3).click()
    await expect(page.locator(".star.on")).to_have_count(4)
    await expect(page.locator(".msg.system").last).to_contain_text("Thank you")
    comment = page.locator(".survey .comment textarea")
    await comment.fill("Quick, thanks!")
    await page.locator(".survey .comment button").click()
    await expect(page.locator(".msg.customer").last).to_have_text("Quick, thanks!")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"survey-chat-{size}.png"))

    # Acknowledged by the server: stored and committed.
    await expect(page.locator(".msg.customer.pending")).to_have_count(0)
    _, detail = await service.api("ana", "GET", f"/api/agent/conversations/{cid}")
    assert detail["status"] == "resolved"
    satisfaction = detail["satisfaction"]
    assert (satisfaction["score"], satisfaction["comment"]) == (4, "Quick, thanks!")
    assert problems == []


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_survey_page_behind_the_mail_link_shows_first_and_records_on_send(
    sqlite_service: Service, browser: Browser, size: str
) -> None:
    service = sqlite_service
    await service.add_agent("ana")
    memory = service.memory
    receipt = await memory.inject(memory.message("talk to a person", external_id="s-1"))
    cid = receipt.conversation_id
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/claim")
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/reply", json={"text": "Ok"})
    await service.api("ana", "POST", f"/api/agent/conversations/{cid}/resolve")
    token = service.app[AFTERCARE].survey_token(cid)

    page = await browser.new_page(viewport=SIZES[size])  # type: ignore[arg-type]
    await page.goto(str(service.client.make_url(f"/survey/{token}")))
    await expect(page.locator("h1")).to_have_text("Rate our service")
    assert (await rating(service, cid))["score"] is None  # opening the link is not a vote
    await page.get_by_label("4 Very good").check()
    await page.locator("textarea[name=comment]").fill("<script>alert(1)</script> fine")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".done")).to_have_text("Thank you for your rating!")
    await page.screenshot(path=str(ARTIFACTS / f"survey-page-{size}.png"))
    result = await rating(service, cid)
    assert result["score"] == 4 and result["comment"] == "<script>alert(1)</script> fine"
