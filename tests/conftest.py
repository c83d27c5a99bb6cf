"""Fixtures shared by every test: a database on each backend, the running service."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from router.storage import Database
from tests.support.load import scratch_database
from tests.support.mail import Relay
from tests.support.service import ROOT, STRICT, Service, running_service
from tests.support.telegram_api import FakeTelegram
from tests.support.wechat_api import FakeWeChat, FakeWeCom

_Fake = TypeVar("_Fake", FakeTelegram, FakeWeChat, FakeWeCom)

PG_URL = os.environ.get("RELAYDESK_TEST_PG_URL", "")
BACKENDS = ["sqlite", "postgres"] if (PG_URL or STRICT) else ["sqlite"]


@asynccontextmanager
async def _database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    if kind == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        await db.upgrade()
        yield db
        await db.dispose()
        return
    if not PG_URL:
        message = "RELAYDESK_TEST_PG_URL is not set: the PostgreSQL tests cannot run"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database: SQLite, and PostgreSQL when RELAYDESK_TEST_PG_URL is set."""
    async with _database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty PostgreSQL schema, for what only PostgreSQL does (several nodes)."""
    async with _database("postgres", tmp_path) as db:
        yield db


@pytest.fixture
async def shared_database() -> AsyncIterator[str]:
    """A PostgreSQL database of its own, for `relaydesk serve` processes (they take a
    URL, not a schema option)."""
    if not PG_URL:
        message = "RELAYDESK_TEST_PG_URL is not set: the several-node tests cannot run"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    async with scratch_database(PG_URL, "relaydesk_nodes") as url:
        yield url


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    """A recording SMTP relay on a free loopback port (replies, alerts, surveys by mail)."""
    server = Relay()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    """A local server speaking the Telegram Bot API, for python-telegram-bot."""
    async with _served(FakeTelegram()) as fake:
        yield fake


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChat]:
    """A local WeChat: the Official Account API, and its callbacks signed by wechatpy."""
    async with _served(FakeWeChat()) as fake:
        yield fake


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    """A local WeCom customer service (and the Official Account API beside it)."""
    async with _served(FakeWeCom()) as fake:
        yield fake


@asynccontextmanager
async def _served(fake: _Fake) -> AsyncIterator[_Fake]:
    fake.server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()


@pytest.fixture
async def service(database: Database, tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service on a loopback port, on each database backend."""
    async with running_service(tmp_path, database=database) as running:
        yield running


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service exactly as `relaydesk serve` builds it, on its own SQLite file."""
    async with running_service(tmp_path) as running:
        yield running


def _worktree() -> dict[str, str] | None:
    """Every file git would report as changed or new, with a digest of its content;
    None outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "-uall"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    found: dict[str, str] = {}
    for entry in listed.decode("utf-8", "surrogateescape").split("\0"):
        name = entry[3:]
        if not name:
            continue
        path = ROOT / name
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE] = _worktree()


_TREE = pytest.StashKey[dict[str, str] | None]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under `make test` and CI every test runs: a skip fails the run (issue 14, item 20).
    A test run leaves the checkout as it found it: artifacts go under tests/artifacts
    (ignored) or a temporary folder, never over a tracked file."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    before = session.config.stash.get(_TREE, None)
    after = _worktree() if before is not None else None
    if before is not None and after is not None and before != after and reporter is not None:
        changed = sorted(
            name for name in after.keys() | before.keys() if before.get(name) != after.get(name)
        )
        reporter.write_line(
            "the test run changed files of the checkout: " + ", ".join(changed[:20]), red=True
        )
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not STRICT or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and session.exitstatus == 0:
        reporter.write_line(
            f"{len(skipped)} test(s) skipped under RELAYDESK_TEST_STRICT/CI: a test dependency "
            "is missing (see the skip reasons above); failing the run",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
