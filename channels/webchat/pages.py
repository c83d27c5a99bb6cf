"""The chat page, its script and style, and the embeddable widget, from the package."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

__all__ = ["ChatPages"]


class ChatPages:
    """``/chat``, ``/chat/chat.js|css`` and ``/widget.js``, read once at start."""

    def __init__(self, title: str) -> None:
        self._assets = {
            name: _static(name) for name in ("chat.html", "chat.js", "chat.css", "widget.js")
        }
        self._assets["chat.html"] = self._assets["chat.html"].replace(
            "{{title}}", _escape_html(title)
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/chat", self._page),
            web.get("/chat/{asset:chat\\.(js|css)}", self._asset),
            web.get("/widget.js", self._widget),
        ]

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._assets["chat.html"],
            content_type="text/html",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _asset(self, request: web.Request) -> web.Response:
        asset = request.match_info["asset"]
        content_type = "text/javascript" if asset.endswith(".js") else "text/css"
        return web.Response(
            text=self._assets[asset],
            content_type=content_type,
            headers={"Cache-Control": "no-cache"},
        )

    async def _widget(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._assets["widget.js"],
            content_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )


def _static(name: str) -> str:
    return resources.files("channels.webchat").joinpath("static", name).read_text("utf-8")


def _escape_html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
