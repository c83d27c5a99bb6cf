"""Rate limits the nodes count together (PostgreSQL): one bucket per key for every node,
nothing of the key stored as it is, and full buckets forgotten."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from router.delivery.shared_limits import DatabaseRateLimits, forget_full_buckets
from router.storage import Database

pytestmark = pytest.mark.postgres


async def test_two_nodes_take_from_one_bucket(postgres: Database) -> None:
    nodes = [DatabaseRateLimits(postgres), DatabaseRateLimits(postgres)]
    bucket = ("visitor:v1", 3, 1)
    # Six takes at once from two nodes: three pass, whoever asks.
    waits = await asyncio.gather(*(nodes[n % 2].take(bucket) for n in range(6)))
    assert sorted(w == 0 for w in waits) == [False, False, False, True, True, True]
    assert all(50 < w <= 180 for w in waits if w)  # one token a minute
    # Another key has its own bucket; two at once are checked as one.
    assert await nodes[0].take(("visitor:v2", 3, 1), ("address:203.0.113.9", 5, 60)) == 0
    async with postgres.read() as repo:
        keys = [k for (k,) in (await repo.session.execute(text("SELECT key FROM rate_buckets")))]
    assert len(keys) == 3 and not any("v1" in k or "203.0" in k for k in keys)


async def test_full_buckets_are_forgotten_and_others_kept(postgres: Database) -> None:
    limits = DatabaseRateLimits(postgres)
    await limits.take(("visitor:quiet", 2, 1))
    await limits.take(("visitor:busy", 2, 1))
    assert await forget_full_buckets(postgres) == 0  # neither is full yet
    async with postgres.write() as repo:  # as if a minute had passed for one of them
        await repo.session.execute(
            text(
                "UPDATE rate_buckets SET full_at = full_at - 120"
                " WHERE key = (SELECT min(key) FROM rate_buckets)"
            )
        )
    assert await forget_full_buckets(postgres) == 1
    async with postgres.read() as repo:
        assert await repo.session.scalar(text("SELECT count(*) FROM rate_buckets")) == 1


async def test_a_database_that_is_away_lets_messages_through() -> None:
    away = Database("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        assert await DatabaseRateLimits(away).take(("visitor:v", 1, 1)) == 0
    finally:
        await away.dispose()
