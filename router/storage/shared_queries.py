"""State the nodes share in the database: who is in the inbox and what they look at,
the login limiter's counts, and token buckets for rate limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from router.storage.models import ChannelStateRow, LoginThrottleRow, PresenceRow

__all__ = ["LoginThrottle", "SharedStateQueries", "Viewer"]


class Viewer(NamedTuple):
    """An open inbox looking at a conversation."""

    name: str
    typing_until: float | None


class LoginThrottle(NamedTuple):
    failures: int
    last: float
    next_allowed: float


# One statement takes a token from a bucket (made full if it is new), by the database's
# clock, so every node counts against the same bucket at the same time. PostgreSQL only:
# on SQLite there is one node, and its buckets stay in its memory.
_BURST, _RATE = "CAST(:burst AS float8)", "CAST(:rate AS float8)"  # tokens; per second
# The bucket's level now, before this take (excluded.stamp: the database's clock).
_REFILLED = f"least({_BURST}, b.level + (excluded.stamp - b.stamp) * {_RATE})"
_TAKE_TOKEN = text(
    f"""
    WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t)
    INSERT INTO rate_buckets AS b (key, level, stamp, full_at, passed)
    SELECT CAST(:key AS varchar), {_BURST} - 1, now.t, now.t + 1 / {_RATE}, true FROM now
    ON CONFLICT (key) DO UPDATE SET
        level = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,
        stamp = excluded.stamp,
        full_at = excluded.stamp
            + ({_BURST} - {_REFILLED} + CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END) / {_RATE},
        passed = {_REFILLED} >= 1
    RETURNING level, passed
    """
)
_FORGET_BUCKETS = text(
    "DELETE FROM rate_buckets WHERE full_at < extract(epoch FROM clock_timestamp())::float8"
)


class SharedStateQueries:
    session: AsyncSession

    # -- presence ----------------------------------------------------------------------

    async def add_presence(
        self, *, node: str, handle: int, agent_id: int, name: str, now: float
    ) -> None:
        self.session.add(
            PresenceRow(node=node, handle=handle, agent_id=agent_id, name=name, seen_at=now)
        )

    async def set_presence(self, node: str, handle: int, **values: Any) -> None:
        """viewing, typing_until, seen_at of one open inbox."""
        assert set(values) <= {"viewing", "typing_until", "seen_at"}, values
        p = PresenceRow
        await self.session.execute(
            update(p)
            .where(p.node == node, p.handle == handle)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def remove_presence(self, node: str, handle: int) -> None:
        p = PresenceRow
        await self.session.execute(delete(p).where(p.node == node, p.handle == handle))

    async def refresh_presence(self, node: str, handles: Sequence[int], now: float) -> None:
        """This node's open inboxes are still open (and only those: a row it left behind
        in a crash, under a handle it no longer has, goes)."""
        p = PresenceRow
        await self.session.execute(
            update(p)
            .where(p.node == node, p.handle.in_(list(handles)))
            .values(seen_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(delete(p).where(p.node == node, p.handle.not_in(list(handles))))

    async def forget_presence(self, before: float) -> int:
        """Rows no node refreshed since ``before`` (their node died)."""
        result = await self.session.execute(delete(PresenceRow).where(PresenceRow.seen_at < before))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def online_agents(self, since: float) -> set[int]:
        p = PresenceRow
        rows = await self.session.execute(select(p.agent_id).where(p.seen_at >= since).distinct())
        return {int(agent_id) for (agent_id,) in rows.all()}

    async def viewers(self, conversation_id: int, since: float) -> list[Viewer]:
        p = PresenceRow
        rows = await self.session.execute(
            select(p.name, p.typing_until).where(p.viewing == conversation_id, p.seen_at >= since)
        )
        return [Viewer(str(name), until) for name, until in rows.all()]

    # -- the login limiter ------------------------------------------------------------

    async def lock_login_throttles(self, keys: Sequence[str]) -> dict[str, LoginThrottle]:
        """The counts of ``keys``, locked until the end of the unit of work (two nodes
        counting one name's attempts take turns); keys never counted are absent.

        Each key gets a row first (an empty count: as good as absent), so that there
        is a row to lock even for a first attempt; in one order, against deadlocks."""
        t = LoginThrottleRow
        ordered = sorted(set(keys))
        await self.session.execute(
            self._insert_throttles().on_conflict_do_nothing(index_elements=["key"]),
            [
                {"key": k, "failures": 0, "last": 0.0, "next_allowed": 0.0, "trusted": False}
                for k in ordered
            ],
        )
        rows = await self.session.execute(
            select(t.key, t.failures, t.last, t.next_allowed)
            .where(t.key.in_(ordered), t.trusted.is_(False))
            .order_by(t.key)
            .with_for_update()
        )
        return {
            str(k): LoginThrottle(int(f), float(la), float(n))
            for k, f, la, n in rows.all()
            if f > 0
        }

    async def save_login_throttles(self, counts: dict[str, LoginThrottle]) -> None:
        await self._upsert_throttles(
            [
                {
                    "key": key,
                    "failures": c.failures,
                    "last": c.last,
                    "next_allowed": c.next_allowed,
                    "trusted": False,
                }
                for key, c in counts.items()
            ]
        )

    async def drop_login_throttles(self, keys: Sequence[str]) -> None:
        t = LoginThrottleRow
        await self.session.execute(delete(t).where(t.key.in_(list(keys)), t.trusted.is_(False)))

    async def trust_login(self, key: str, now: float) -> None:
        await self._upsert_throttles(
            [{"key": key, "failures": 0, "last": now, "next_allowed": 0.0, "trusted": True}]
        )

    async def login_trusted(self, key: str) -> bool:
        t = LoginThrottleRow
        found = await self.session.scalar(select(t.key).where(t.key == key, t.trusted.is_(True)))
        return found is not None

    async def forget_login_throttles(self, *, counts_before: float, trust_before: float) -> None:
        t = LoginThrottleRow
        await self.session.execute(
            delete(t).where(
                ((t.trusted.is_(False)) & (t.last < counts_before))
                | ((t.trusted.is_(True)) & (t.last < trust_before))
            )
        )

    # -- channels' state (access tokens, sync cursors) ----------------------------------

    async def channel_state(self, key: str) -> tuple[str, float | None] | None:
        row = (
            await self.session.execute(
                select(ChannelStateRow.value, ChannelStateRow.expires_at).where(
                    ChannelStateRow.key == key
                )
            )
        ).first()
        return None if row is None else (str(row.value), row.expires_at)

    async def keep_channel_state(self, key: str, value: str, expires_at: float | None) -> None:
        dialect = self.session.get_bind().dialect.name
        statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(ChannelStateRow)
        fresh = statement.excluded
        await self.session.execute(
            statement.values(key=key, value=value, expires_at=expires_at).on_conflict_do_update(
                index_elements=["key"],
                set_={"value": fresh.value, "expires_at": fresh.expires_at},
            )
        )

    def _insert_throttles(self) -> Any:
        """INSERT into login_throttles in this database's dialect (for ON CONFLICT)."""
        dialect = self.session.get_bind().dialect.name
        return (sqlite_insert if dialect == "sqlite" else postgresql_insert)(LoginThrottleRow)

    async def _upsert_throttles(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        statement = self._insert_throttles()
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "failures": statement.excluded.failures,
                    "last": statement.excluded.last,
                    "next_allowed": statement.excluded.next_allowed,
                    "trusted": statement.excluded.trusted,
                },
            ),
            rows,
        )

    # -- rate buckets (PostgreSQL) -----------------------------------------------------

    async def take_token(self, key: str, *, burst: int, per_minute: float) -> float:
        """0 if the bucket ``key`` had a token (taken now), else the seconds until it
        will have one."""
        rate = per_minute / 60.0
        row = (
            await self.session.execute(
                _TAKE_TOKEN, {"key": key, "burst": float(burst), "rate": rate}
            )
        ).one()
        level, passed = float(row[0]), bool(row[1])
        return 0.0 if passed else (1.0 - level) / rate

    async def forget_rate_buckets(self) -> int:
        """Buckets full again (as good as new)."""
        result = await self.session.execute(_FORGET_BUCKETS)
        return int(result.rowcount)  # type: ignore[attr-defined]
