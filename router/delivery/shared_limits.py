"""Rate limits every node counts against together: token buckets in PostgreSQL.

On one node (SQLite) the web chat keeps its buckets in memory; behind a balancer, a
visitor or an address spreading messages over several nodes would get each node's
allowance, so there the buckets live in the database (one statement per check, by
the database's clock). Keys are stored as their SHA-256: no visitor id or address in
the table. Full buckets are as good as new and are forgotten by the scheduler.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy.exc import SQLAlchemyError

from router.storage import Database

__all__ = ["DatabaseRateLimits", "forget_full_buckets"]

logger = logging.getLogger(__name__)


class DatabaseRateLimits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(self, *buckets: tuple[str, int, int]) -> float:
        try:
            async with self._db.write() as repo:
                wait = 0.0
                for key, burst, per_minute in buckets:
                    hashed = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
                    wait = max(
                        wait, await repo.take_token(hashed, burst=burst, per_minute=per_minute)
                    )
                return wait
        except (SQLAlchemyError, OSError) as exc:
            # A limit that cannot be checked lets the message in: losing a customer's
            # message is worse than letting a burst through while the database is away.
            logger.warning("rate limits not checked (%s); message let through", type(exc).__name__)
            return 0.0


async def forget_full_buckets(db: Database) -> int:
    if db.is_sqlite:
        return 0
    async with db.write() as repo:
        return await repo.forget_rate_buckets()
