"""The customer in the web chat sees that the person handling their conversation is
typing in the inbox — a real browser on each side."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_chat_page import chat
from tests.browser.test_inbox_page import Watch, sign_in
from tests.support.inbox import add_inbox_agent
from tests.support.service import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_the_customer_sees_the_agent_typing(
    sqlite_service: Service, browser: Browser
) -> None:
    service = sqlite_service
    await add_inbox_agent(service, "Li Wei")
    customer = await browser.new_page()
    await customer.goto(str(service.client.make_url("/chat")))
    await expect(customer.locator("#status")).to_have_text("online")
    await chat(customer, "talk to a person")
    await expect(customer.locator(".msg.system").last).to_contain_text("will answer by")
    typing = customer.locator("#typing")
    await expect(typing).to_be_hidden()

    watch = Watch()
    agent = await sign_in(await browser.new_context(), service, "Li Wei", watch)
    await agent.locator("#queue-rows a").first.click()
    # Typing before claiming shows the other agents only, not the customer.
    await agent.locator("#reply-text").press_sequentially("Hel")
    await agent.locator("#claim").click()
    await expect(agent.locator("#status")).to_have_attribute("data-status", "assigned")
    await expect(typing).to_be_hidden()
    await agent.locator("#reply-text").press_sequentially("Hello, I am looking into it")
    await expect(typing).to_be_visible()
    assert watch.problems == []
