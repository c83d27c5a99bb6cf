"""The inbox's own entries in the aiohttp application (the service's are in
``router.keys``)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from router.inbox.accounts import Accounts
    from router.inbox.assign import AutoAssigner
    from router.inbox.presence import Presence

__all__ = ["ACCOUNTS", "AUTO_ASSIGNER", "LIVE_SOCKETS", "PRESENCE", "close_live_sockets"]

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
AUTO_ASSIGNER: web.AppKey[AutoAssigner] = web.AppKey("auto_assigner")
# Agents with the inbox open, and what each is viewing and typing.
PRESENCE: web.AppKey[Presence] = web.AppKey("presence")
# The agents' open websockets (the inbox's live feed, the API's events): closed at
# shutdown, so a tab left open never holds the service up (its page reconnects).
LIVE_SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("live_sockets")


async def close_live_sockets(app: web.Application) -> None:
    open_now = app[LIVE_SOCKETS]
    for ws in list(open_now):
        await ws.close(code=1001, message=b"server shutdown")
