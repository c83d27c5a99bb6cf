"""Agents in real browsers (Debian chromium): the shared inbox with a live customer."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import update

from channels.base import Attachment, ChannelAddress, InboundMessage, SenderIdentity
from router.builders import utc_now
from router.conversations import Priority
from router.keys import RELOAD_BOT
from router.storage.models import ConversationRow
from tests.support.inbox import PASSWORD, add_inbox_agent
from tests.support.service import DEMO_KB, ROOT, Service, running_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "tests" / "artifacts"
XSS = '<img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:alert(3)">x</a>'


class Watch:
    """Fails the test on any dialog (alert), page error or console error."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def page(self, page: Page) -> Page:
        page.on("dialog", lambda d: self.problems.append(f"dialog: {d.message}"))
        page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        page.on("console", self._console)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # A refused reply answers 409 on purpose; the browser logs every 4xx page load.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")


async def sign_in(context: BrowserContext, service: Service, name: str, watch: Watch) -> Page:
    page = watch.page(await context.new_page())
    await page.goto(str(service.client.make_url("/inbox")))
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("body[data-live='1']")).to_have_count(1)
    return page


@pytest.fixture
async def kb_copy(tmp_path: Path) -> Path:
    """A knowledge base the test may change (Save as FAQ writes into it)."""
    folder = tmp_path / "kb"
    shutil.copytree(DEMO_KB, folder)
    return folder


@pytest.fixture
async def inbox(tmp_path: Path, kb_copy: Path) -> AsyncIterator[Service]:
    overrides = {"knowledge": {"path": str(kb_copy), "reload_seconds": 0}}
    async with running_service(tmp_path / "svc", overrides=overrides) as service:
        await add_inbox_agent(service, "Li Wei", admin=True)
        await add_inbox_agent(service, "Ana")
        yield service


async def customer_chat(browser: Browser, service: Service, watch: Watch) -> Page:
    page = watch.page(await browser.new_page())
    await page.goto(str(service.client.make_url("/chat")))
    await expect(page.locator("#status")).to_have_text("online")
    return page


async def say(page: Page, text: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#send").click()


async def test_two_agents_and_a_customer_work_one_handoff_together(
    inbox: Service, browser: Browser
) -> None:
    watch = Watch()
    li = await sign_in(await browser.new_context(), inbox, "Li Wei", watch)
    ana = await sign_in(await browser.new_context(), inbox, "Ana", watch)
    customer = await customer_chat(browser, inbox, watch)

    await say(customer, "我要投诉，洗衣机漏水，转人工")
    await expect(customer.locator(".msg.system").last).to_contain_text("工单号")
    # The handoff appears in both agents' queues without a reload.
    for page in (li, ana):
        await expect(page.locator("#queue-rows tr.row")).to_have_count(1)
        await expect(page.locator("#queue-rows")).to_contain_text("洗衣机漏水")
    ARTIFACTS.mkdir(exist_ok=True)
    await li.screenshot(path=str(ARTIFACTS / "inbox-queue.png"), full_page=True)

    # Ana opens it first; Li Wei sees her there, then claims it.
    await ana.locator("#queue-rows a").first.click()
    await expect(ana.locator("#status")).to_have_attribute("data-status", "queued")
    await li.locator("#queue-rows a").first.click()
    await expect(li.locator("#presence")).to_contain_text("Ana")
    await li.locator("#claim").click()
    await expect(li.locator("#status")).to_have_attribute("data-status", "assigned")
    # Ana's open page shows the claim live; her reply is stopped and her draft kept.
    await expect(ana.locator("#assignee")).to_have_text("Li Wei")
    await ana.locator("#reply-text").fill("Ana here, I can help!")
    await ana.locator("#send-reply").click()
    await expect(ana.locator("#notice")).to_be_visible()
    await expect(ana.locator("#reply-text")).to_have_value("Ana here, I can help!")
    await expect(customer.locator(".msg.agent")).to_have_count(0)

    await li.locator("#reply-text").fill("您好，我是李伟，马上为您安排上门检修。")
    await li.locator("#send-reply").click()
    await expect(customer.locator(".msg.agent").last).to_contain_text("马上为您安排上门检修")
    await expect(ana.locator("#messages")).to_contain_text("马上为您安排上门检修")
    await li.screenshot(path=str(ARTIFACTS / "inbox-conversation.png"), full_page=True)

    await li.locator("#resolve").click()
    await expect(li.locator("#status")).to_have_attribute("data-status", "resolved")
    for page in (li, ana):
        await page.goto(str(inbox.client.make_url("/inbox?tab=resolved")))
        await expect(page.locator("#queue-rows tr.row")).to_have_count(1)
    assert watch.problems == []


async def _queued(service: Service, text: str, sender: str, *, email: str | None = None) -> int:
    inbound = InboundMessage(
        external_id=f"{sender}-{text[:10]}",
        address=ChannelAddress("memory", sender),
        sender=SenderIdentity("memory", sender, display_name=sender, email=email),
        text=text,
    )
    receipt = await service.memory.inject(inbound)
    return receipt.conversation_id


async def test_countdowns_follow_the_sla_and_search_finds_a_contact_by_email(
    inbox: Service, browser: Browser
) -> None:
    now = utc_now()
    promises = {
        "ok": (now, now + timedelta(minutes=60)),
        "near": (now - timedelta(minutes=50), now + timedelta(minutes=10)),
        "late": (now - timedelta(minutes=70), now - timedelta(minutes=10)),
    }
    ids = {}
    for state, (start, due) in promises.items():
        ids[state] = await _queued(
            inbox, "talk to a person", f"{state}-customer", email=f"{state}@example.org"
        )
        # Back-date the handoff: the promise was made at ``start``.
        async with inbox.db.write() as repo:
            await repo.session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == ids[state])
                .values(sla_due_at=due, handed_off_at=start, priority=Priority.NORMAL.value)
            )
    watch = Watch()
    page = await sign_in(await browser.new_context(), inbox, "Li Wei", watch)
    for state, conversation_id in ids.items():
        row = page.locator(f'tr[data-conversation="{conversation_id}"] .countdown')
        await expect(row).to_have_class(f"countdown sla-{state}")
    # Soonest promise first.
    rows = page.locator("#queue-rows tr.row")
    await expect(rows.first).to_have_attribute("data-conversation", str(ids["late"]))

    await page.locator("#search").fill("near@example.org")
    await page.locator("#search").press("Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-conversation", str(ids["near"]))
    assert watch.problems == []


async def test_save_as_faq_teaches_the_bot_for_the_next_customer(
    inbox: Service, browser: Browser, kb_copy: Path
) -> None:
    watch = Watch()
    question = "Can I pay with my company's gift voucher?"
    first = await customer_chat(browser, inbox, watch)
    await say(first, question)
    await expect(first.locator(".msg.system").last).to_contain_text("will answer by")
    # The customer's last line is not their question.
    await say(first, "My order number is 1234.")
    await expect(first.locator(".msg.customer.pending")).to_have_count(0)

    li = await sign_in(await browser.new_context(), inbox, "Li Wei", watch)
    await li.locator("#queue-rows a").first.click()
    await li.locator("#claim").click()
    answer = "Yes: company gift vouchers are accepted at checkout, under Payment → Voucher."
    await li.locator("#reply-text").fill("Hello, this is Li Wei.\n" + answer)
    await li.locator("#send-reply").click()
    await expect(first.locator(".msg.agent").last).to_contain_text("company gift vouchers")
    faq = li.locator(".faq-form")
    await expect(faq.locator("input[name=question]")).to_have_value(question)
    # The greeting is not part of the bot's answer; the agent may edit what is.
    await expect(faq.locator("textarea[name=answer]")).to_have_value(answer)
    async with inbox.relearned():  # in the background: the agent does not wait for it
        await faq.locator("button").click()
        await expect(li.locator("#notice")).to_contain_text("Saved to the knowledge base")
    learned = (kb_copy / "learned.yaml").read_text("utf-8")
    assert "gift voucher" in learned and "Li Wei" not in learned

    second = await customer_chat(await browser.new_context(), inbox, watch)
    await say(second, question)
    await expect(second.locator(".msg.bot").last).to_contain_text("company gift vouchers")
    assert watch.problems == []


async def test_hostile_customer_text_never_runs_in_an_agents_browser(
    inbox: Service, browser: Browser, kb_copy: Path
) -> None:
    hostile_entry = (
        f"- id: hostile\n  questions: [hostile canned answer]\n  answer: {{en: '{XSS}'}}\n"
    )
    (kb_copy / "hostile.yaml").write_text(hostile_entry, "utf-8")
    await inbox.app[RELOAD_BOT]()
    inbound = InboundMessage(
        external_id="xss-1",
        address=ChannelAddress("memory", "xss"),
        sender=SenderIdentity("memory", "xss", display_name=XSS, email="xss@example.org"),
        text=f"talk to a person {XSS}",
        html=f"<html><body>{XSS}</body></html>",
        attachments=(Attachment(name=XSS, content_type="text/html", size=10, ref="memory/x"),),
        extras={"subject": XSS},
    )
    receipt = await inbox.memory.inject(inbound)
    watch = Watch()
    li = await sign_in(await browser.new_context(), inbox, "Li Wei", watch)
    await expect(li.locator("#queue-rows")).to_contain_text("<img src=x")
    await li.goto(str(inbox.client.make_url(f"/inbox/c/{receipt.conversation_id}")))
    await expect(li.locator("#messages")).to_contain_text("<script>alert(2)</script>")
    await li.locator("#claim").click()
    await li.locator("#canned-search").fill("hostile canned answer")
    await li.locator(".canned-pick").first.click()
    await expect(li.locator("#reply-text")).to_have_value(XSS)
    for page_path in (
        "/inbox?tab=unassigned",
        "/inbox?tab=mine",
        f"/inbox/c/{receipt.conversation_id}",
    ):
        await li.goto(str(inbox.client.make_url(page_path)))
        await expect(li.locator("img")).to_have_count(0)
        await expect(li.locator("a[href^='javascript:']")).to_have_count(0)
    assert watch.problems == []
