"""The database's lifetime: engine, units of work, migrations."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from router.storage.inline_sqlite import inline_connector
from router.storage.repositories import Repositories

__all__ = ["Database"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
# Seconds the event-loop writer waits for another process holding SQLite's write lock.
_WRITE_BUSY_TIMEOUT = 2.0


class Database:
    """One engine and its session factory.

    ``write()`` and ``read()`` are units of work. On SQLite, writers in this process take
    turns through an asyncio lock: SQLite allows one writer at a time, and a
    deferred transaction that upgrades to a write while another connection
    writes fails at once instead of waiting. Readers are never blocked (WAL).
    """

    def __init__(self, url: str, *, echo: bool = False, **engine_options: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            engine_options.setdefault("connect_args", {"timeout": 30})
        else:
            engine_options.setdefault("pool_pre_ping", True)
            if url.startswith("postgresql+asyncpg"):
                # Our statements are short, and PostgreSQL's JIT compiles one that reads a
                # few thousand rows (a month's report) for longer than it then runs
                # (measured: 290 ms of JIT for 80 ms of execution; bench/report_bench.py).
                connect_args = dict(engine_options.get("connect_args", {}))
                connect_args["server_settings"] = {
                    "jit": "off",
                    **connect_args.get("server_settings", {}),
                }
                engine_options["connect_args"] = connect_args
        # Every unit of work ends in COMMIT or ROLLBACK (``session.begin()``), so the
        # pool's own rollback on return would only cost a round trip.
        engine_options.setdefault("pool_reset_on_return", None)
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, **engine_options)
        self._write_engine = self.engine
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            database = make_url(url).database
            if database and database != ":memory:" and not database.startswith("file:"):
                # Writes on the event loop's thread (see inline_sqlite); reads stay threaded.
                self._write_engine = create_async_engine(
                    url,
                    echo=echo,
                    async_creator=inline_connector(database, busy_timeout=_WRITE_BUSY_TIMEOUT),
                    pool_reset_on_return=None,
                )
                event.listen(self._write_engine.sync_engine, "connect", _writer_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._local_locks: dict[str, asyncio.Lock] = {}

    @property
    def write_engine(self) -> AsyncEngine:
        """The engine units of work write through (on SQLite, the event-loop writer)."""
        return self._write_engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Repositories]:
        """A unit of work inside ``BEGIN … COMMIT``; rolls back if the block raises."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield Repositories(session)
            return
        async with self._write_lock, self._write_sessions() as session, session.begin():
            yield Repositories(session)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Repositories]:
        """A unit of work that only reads; never blocks writers."""
        async with self.sessions() as session, session.begin():
            yield Repositories(session)

    async def reading(self, query: Callable[[Repositories], Awaitable[_T]]) -> _T:
        """``query`` in a read unit of its own: several side by side (``asyncio.gather``)
        run at once on the database (SQLite's reader threads, PostgreSQL's backends),
        each in its own snapshot."""
        async with self.read() as repo:
            return await query(repo)

    @asynccontextmanager
    async def exclusively(self, name: str) -> AsyncIterator[None]:
        """The block runs on one node at a time: the others wait for it (PostgreSQL: an
        advisory lock ``name`` held by a transaction of its own; SQLite, one node: a
        lock in this process)."""
        if self.is_sqlite:
            lock = self._local_locks.setdefault(name, asyncio.Lock())
            async with lock:
                yield
            return
        # A transaction's lock: it goes with the transaction's end, whatever ends it.
        async with self.engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(name)}
            )
            yield

    async def while_leader(
        self, name: str, work: Callable[[], Awaitable[None]], *, retry: float = 15.0
    ) -> None:
        """Run ``work`` on one node at a time, until cancelled.

        On PostgreSQL the node holding the session advisory lock ``name`` runs it;
        the others try again every ``retry`` seconds, so when the leader dies (its
        connection, and with it the lock, goes) another takes over. On SQLite
        there is one node: ``work`` just runs.
        """
        if self.is_sqlite:
            await work()
            return
        key = _lock_key(name)
        while True:
            try:
                async with self.engine.connect() as connection:
                    held = await connection.scalar(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                    )
                    await connection.commit()
                    if held:
                        logger.info("this node leads %s", name)
                        await self._lead(connection, work, retry)
            except (OSError, SQLAlchemyError):
                logger.exception("leadership for %s lost; trying again", name)
            await asyncio.sleep(retry)  # another node leads; look again later

    @staticmethod
    async def _lead(
        connection: AsyncConnection, work: Callable[[], Awaitable[None]], retry: float
    ) -> None:
        task = asyncio.ensure_future(work())
        try:
            while not task.done():
                # The lock lives as long as this connection: check it is still there.
                await asyncio.wait({task}, timeout=retry)
                if not task.done():
                    await connection.scalar(text("SELECT 1"))
                    await connection.commit()
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("work under leadership failed; letting the lock go")

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic."""

        def run(connection: Connection) -> tuple[set[str], set[str]]:
            before = set(MigrationContext.configure(connection).get_current_heads())
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            return before, set(MigrationContext.configure(connection).get_current_heads())

        async with self.engine.begin() as connection:
            before, after = await connection.run_sync(run)
        # Silent on every start that changes nothing; one line when a migration ran.
        if before != after:
            logger.info(
                "database schema upgraded from %s to %s",
                ", ".join(sorted(before)) or "empty",
                ", ".join(sorted(after)),
            )

    async def dispose(self) -> None:
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()
        await self.engine.dispose()


def _lock_key(name: str) -> int:
    """An advisory lock's key for ``name``: a signed 64-bit number."""
    key = int.from_bytes(hashlib.sha256(f"relaydesk:{name}".encode()).digest()[:8], "big")
    return key - (1 << 63)


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _writer_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # The writer runs on the event loop: wait only briefly for another process's write.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(_WRITE_BUSY_TIMEOUT * 1000)}")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
