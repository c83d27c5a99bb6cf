"""What messaging platforms' channels keep in the database, for every node and across
restarts: access tokens (every node uses the one the last refresh fetched; WeChat
allows a limited number of refreshes a day and retires the previous token soon after)
and sync cursors (WeCom's, advanced only once what they cover is stored)."""

from __future__ import annotations

from router.storage import Database

__all__ = ["DatabaseChannelState"]


class DatabaseChannelState:
    """``channels.wechat.TokenStore`` and ``CursorStore`` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> tuple[str, float] | None:
        found = await self._db.reading(lambda repo: repo.channel_state(f"token:{key}"))
        return None if found is None else (found[0], found[1] or 0.0)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        async with self._db.write() as repo:
            await repo.keep_channel_state(f"token:{key}", token, expires_at)

    async def cursor(self, key: str) -> str:
        found = await self._db.reading(lambda repo: repo.channel_state(f"cursor:{key}"))
        return "" if found is None else found[0]

    async def advance(self, key: str, cursor: str) -> None:
        async with self._db.write() as repo:
            await repo.keep_channel_state(f"cursor:{key}", cursor, None)
