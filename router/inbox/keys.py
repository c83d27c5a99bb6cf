"""The inbox's own entries in the aiohttp application (the service's are in
``router.keys``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from router.inbox.accounts import Accounts
    from router.inbox.assign import AutoAssigner
    from router.inbox.presence import Presence

__all__ = ["ACCOUNTS", "AUTO_ASSIGNER", "PRESENCE"]

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
AUTO_ASSIGNER: web.AppKey[AutoAssigner] = web.AppKey("auto_assigner")
# Agents with the inbox open, and what each is viewing and typing.
PRESENCE: web.AppKey[Presence] = web.AppKey("presence")
