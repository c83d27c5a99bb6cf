"""Messaging platforms' access tokens kept in the database, so that every node uses
the one token the last refresh fetched (WeChat allows a limited number of refreshes a
day, and a refresh makes the previous token expire soon after)."""

from __future__ import annotations

from router.storage import Database

__all__ = ["DatabaseTokens"]


class DatabaseTokens:
    """``channels.wechat.TokenStore`` on the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> tuple[str, float] | None:
        return await self._db.reading(lambda repo: repo.channel_token(key))

    async def put(self, key: str, token: str, expires_at: float) -> None:
        async with self._db.write() as repo:
            await repo.keep_channel_token(key, token, expires_at)
