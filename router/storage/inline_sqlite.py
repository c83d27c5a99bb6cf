"""SQLite writes without a thread hop per statement.

aiosqlite runs every statement on a thread of its own: a queue put, a thread
wake-up, and a call back into the event loop, for each statement of a unit of
work. With one writer at a time (SQLite's rule) that latency, not SQLite, is what
bounds how many messages RelayDesk stores per second. A unit of work's writes are
short (a handful of indexed statements, microseconds each in SQLite), so the
write engine runs them on the event loop's own thread, through the standard
``sqlite3`` module, shaped like the aiosqlite connection SQLAlchemy's aiosqlite
dialect adapts (``create_async_engine(..., async_creator=...)``). Reads, which
may be long (reports, search), stay on aiosqlite's thread.

What could still block: another process holding SQLite's write lock (a CLI
command); ``busy_timeout`` bounds that wait, and it is short for this engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

__all__ = ["inline_connector"]


class _Cursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's queue to its thread (SQLAlchemy sets the isolation level
    through it): the function runs at once."""

    def __init__(self) -> None:
        self.stopped = False

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class _Connection:
    """The aiosqlite ``Connection`` surface SQLAlchemy's adapter uses, on ``sqlite3``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_connector(path: str, *, busy_timeout: float) -> Callable[[], Awaitable[Any]]:
    """An ``async_creator`` for ``create_async_engine`` on the SQLite file ``path``."""

    async def connect() -> _Connection:
        # check_same_thread=False: SQLAlchemy's pool may close it from the thread that
        # disposes of the engine; it is only ever used from one thread at a time.
        return _Connection(sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False))

    return connect
