"""A customer sends a photo of the broken part from the web chat on a phone or a
desktop; the agent sees the photo itself in the inbox and answers with a return label
and a photo of their own, which the customer sees — a real browser on each side."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_chat_page import chat
from tests.browser.test_inbox_page import ARTIFACTS, Watch, sign_in
from tests.browser.test_phone_widths import SIZES, fits
from tests.channels.test_webchat_uploads import png
from tests.support.inbox import add_inbox_agent
from tests.support.service import running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABEL = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_photo_from_the_chat_is_seen_by_the_agent(
    tmp_path: Path, browser: Browser, size: str
) -> None:
    async with running_service(tmp_path / "svc") as service:
        await add_inbox_agent(service, "Li Wei")
        context = await browser.new_context(viewport=SIZES[size])  # type: ignore[arg-type]
        customer = await context.new_page()
        await customer.goto(str(service.client.make_url("/chat")))
        await expect(customer.locator("#status")).to_have_text("online")
        await chat(customer, "talk to a person")
        await expect(customer.locator(".msg.system").last).to_contain_text("will answer by")

        await customer.locator("#text").fill("The base is cracked")
        await customer.locator("#file").set_input_files(
            {"name": "kettle.png", "mimeType": "image/png", "buffer": png(40, 30)}
        )
        sent = customer.locator(".msg.customer").last
        await expect(sent).to_contain_text("📎 kettle.png")
        await expect(sent).not_to_have_class("msg customer pending")
        preview = sent.locator("img.preview")
        await expect(preview).to_be_visible()
        assert await preview.evaluate("img => img.naturalWidth") == 40
        await expect(customer.locator(".msg.customer.failed")).to_have_count(0)
        await fits(customer, SIZES[size]["width"])
        await customer.screenshot(path=str(ARTIFACTS / f"chat-upload-{size}.png"))

        # A reload shows the file in the history, once.
        await customer.reload()
        await expect(customer.locator(".msg.customer", has_text="kettle.png")).to_have_count(1)

        watch = Watch()
        agent = await sign_in(await browser.new_context(), service, "Li Wei", watch)
        await agent.locator("#queue-rows a").first.click()
        photo = agent.locator("img.attachment-preview")
        await expect(photo).to_be_visible()
        assert await photo.evaluate("img => img.naturalWidth") == 40
        await expect(agent.locator("a[data-preview]")).to_have_text("kettle.png")

        # The agent answers with files alone (no text needed once files are chosen).
        await agent.locator("#claim").click()
        await agent.locator("#reply-files").set_input_files(
            [
                {"name": "label.pdf", "mimeType": "application/pdf", "buffer": LABEL},
                {"name": "new-base.png", "mimeType": "image/png", "buffer": png(24, 12)},
            ]
        )
        await agent.locator("#send-reply").click()
        await expect(agent.locator(".message.author-agent", has_text="label.pdf")).to_have_count(1)

        answer = customer.locator(".msg.agent").last
        await expect(answer.locator(".file a")).to_have_text(["📎 label.pdf", "📎 new-base.png"])
        shown = answer.locator("img.preview")
        await expect(shown).to_be_visible()
        assert await shown.evaluate("img => img.naturalWidth") == 24
        async with customer.expect_download() as download:
            await answer.locator(".file a", has_text="label.pdf").click()
        saved = await (await download.value).path()
        assert saved is not None and await asyncio.to_thread(Path(saved).read_bytes) == LABEL
        await fits(customer, SIZES[size]["width"])
        await customer.screenshot(path=str(ARTIFACTS / f"chat-agent-file-{size}.png"))
        assert watch.problems == []
        await context.close()
