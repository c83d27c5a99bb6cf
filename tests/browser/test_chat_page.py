"""A customer in a real browser: the chat page, and the widget on somebody else's site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, FrameLocator, Page, expect

from tests.support.service import ROOT, Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHAT_ORIGIN = web.AppKey("chat_origin", str)


async def chat(where: Page | FrameLocator, text: str) -> None:
    await where.locator("#text").fill(text)
    await where.locator("#send").click()


@pytest.mark.parametrize(
    ("locale", "lang", "online", "send"),
    [("zh-CN", "zh-CN", "在线", "发送"), ("zh-TW", "zh-TW", "在線", "發送")],
)
async def test_a_chinese_browser_gets_the_chat_in_its_script(
    sqlite_service: Service, browser: Browser, locale: str, lang: str, online: str, send: str
) -> None:
    context = await browser.new_context(locale=locale)
    page = await context.new_page()
    await page.goto(str(sqlite_service.client.make_url("/chat")))
    await expect(page.locator("#status")).to_have_text(online)
    await expect(page.locator("#send")).to_have_text(send)
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await chat(page, "怎么申请退货？")
    await expect(page.locator(".msg.bot").last).to_contain_text("申请售后")
    await context.close()


async def test_a_customer_chats_in_the_browser(sqlite_service: Service, browser: Browser) -> None:
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    await page.goto(str(sqlite_service.client.make_url("/chat")))
    await expect(page.locator("#status")).to_have_text("online")

    await chat(page, "怎么申请退货？")
    bot = page.locator(".msg.bot")
    await expect(bot.last).to_contain_text("申请售后")

    await chat(page, "return")
    choice = page.get_by_role("button", name="Return deadline")
    await expect(choice).to_be_visible()
    await choice.click()
    await expect(bot.last).to_contain_text("without giving a reason")
    await expect(choice).to_be_disabled()

    await chat(page, "talk to a person")
    notice = page.locator(".msg.system")
    await expect(notice.last).to_contain_text("will answer by")

    # A reload continues the same conversation, history included.
    await page.reload()
    await expect(page.locator(".msg.system").last).to_contain_text("will answer by")
    await expect(page.locator(".msg.customer")).to_have_count(4)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "chat.png"))
    assert problems == []


@pytest.fixture
async def shop_site(tmp_path: Path) -> AsyncIterator[TestServer]:
    """Somebody else's web site (another origin) that only adds our script tag."""

    async def index(request: web.Request) -> web.Response:
        chat_origin = request.app[CHAT_ORIGIN]
        html = (
            "<!doctype html><html><head><title>Shop</title></head><body>"
            "<h1>Our appliances</h1>"
            f'<script src="{chat_origin}/widget.js" async></script>'
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    server = TestServer(app, host="127.0.0.1", port=0)
    yield server
    await server.close()


async def test_the_widget_opens_a_chat_on_another_site(
    sqlite_service: Service, shop_site: TestServer, browser: Browser
) -> None:
    chat_origin = str(sqlite_service.client.make_url("")).rstrip("/")
    shop_site.app[CHAT_ORIGIN] = chat_origin
    await shop_site.start_server()
    page = await browser.new_page()
    await page.goto(str(shop_site.make_url("/")))
    await page.locator("#relaydesk-bubble").click()
    frame = page.frame_locator("#relaydesk-frame")
    await expect(frame.locator("#status")).to_have_text("online")
    await chat(frame, "How long is the warranty?")
    await expect(frame.locator(".msg.bot").last).to_contain_text("1-year warranty")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "widget.png"))


async def test_the_widget_keeps_the_chat_across_reloads_without_third_party_storage(
    sqlite_service: Service, shop_site: TestServer, browser: Browser
) -> None:
    chat_origin = str(sqlite_service.client.make_url("")).rstrip("/")
    shop_site.app[CHAT_ORIGIN] = chat_origin
    await shop_site.start_server()
    # The shop is another site (localhost, the chat is on 127.0.0.1): the iframe's own
    # storage is third-party storage, which browsers block or partition.
    shop_url = f"http://localhost:{shop_site.port}/"
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(shop_url)
    await page.locator("#relaydesk-bubble").click()
    frame = page.frame_locator("#relaydesk-frame")
    await expect(frame.locator("#status")).to_have_text("online")
    await chat(frame, "How long is the warranty?")
    await expect(frame.locator(".msg.bot").last).to_contain_text("1-year warranty")
    chat_frame = next(f for f in page.frames if f.url.startswith(chat_origin))
    # Headless Chromium refuses the iframe its storage outright, as users' browsers do.
    own_storage = "() => { try { return localStorage.length; } catch (e) { return 'blocked'; } }"
    assert await chat_frame.evaluate(own_storage) in ("blocked", 0)
    assert "relaydesk.widget:" + chat_origin in await page.evaluate(
        "() => Object.keys(localStorage).join(' ')"
    )

    await page.reload()
    await page.locator("#relaydesk-bubble").click()
    frame = page.frame_locator("#relaydesk-frame")
    await expect(frame.locator(".msg.bot").last).to_contain_text("1-year warranty")
    await expect(frame.locator(".msg.customer")).to_have_count(1)
    # The token never stays in the iframe's address either.
    chat_frame = next(f for f in page.frames if f.url.startswith(chat_origin))
    assert "token" not in chat_frame.url
    assert problems == []
    await context.close()
