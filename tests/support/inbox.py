"""An agent's browser-less session with the inbox: cookies, CSRF, forms."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from router.inbox.keys import ACCOUNTS
from tests.support.service import Service

PASSWORD = "correct horse battery staple"


async def add_inbox_agent(service: Service, name: str, *, admin: bool = False) -> None:
    await service.app[ACCOUNTS].create(name, PASSWORD, role="admin" if admin else "agent")


class InboxSession:
    """One agent signed in to the inbox over HTTP, with its own cookie jar."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.http = aiohttp.ClientSession(
            base_url=str(service.client.make_url("/")),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def login(self, name: str, password: str = PASSWORD) -> int:
        async with self.http.post(
            "/inbox/login", data={"name": name, "password": password}, allow_redirects=False
        ) as response:
            status = response.status
        if status == 303:
            await self.refresh_csrf()
        return status

    async def refresh_csrf(self) -> None:
        page = await self.get("/inbox")
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match, "no CSRF token on the page"
        self.csrf = match.group(1)

    async def get(self, path: str) -> str:
        async with self.http.get(path) as response:
            return await response.text()

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> tuple[int, str]:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        async with self.http.post(path, data=form, allow_redirects=False) as response:
            return response.status, await response.text()
