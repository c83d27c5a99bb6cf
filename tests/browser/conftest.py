"""A real Chromium (Debian's package) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from tests.support.service import STRICT

try:
    from playwright.async_api import Browser, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None or async_playwright is None:
        reason = "Debian chromium and Python playwright are needed (apt-get install chromium)"
        if STRICT:
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
