"""kill -9 under load: real `relaydesk serve` processes behind a round-robin proxy,
web-chat visitors and bridge customers following the documented protocols, nodes
killed at random moments and restarted. Nothing acknowledged is lost or stored twice,
every reply the service made reaches its customer once, every conversation is valid.

CI size (about 1,000 messages, two kills); the full size is `bench/load.py --kills`
(README)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_URL
from tests.support.load import LoadSettings, run_load
from tests.support.service import STRICT

pytestmark = pytest.mark.slow


def _report(result: object) -> str:
    figures = result.figures()  # type: ignore[attr-defined]
    return f"faults {figures['fault_examples']}, counts {figures['counts']}"


async def test_one_node_on_sqlite_killed_twice_loses_nothing(tmp_path: Path) -> None:
    result = await run_load(
        LoadSettings(
            folder=tmp_path,
            database=f"sqlite+aiosqlite:///{tmp_path / 'relaydesk.db'}",
            messages=1000,
            visitors=8,
            bridge_senders=8,
            kills=2,
            seconds=240,
        )
    )
    figures = result.figures()
    assert result.finished, f"the load did not finish in time: {figures}"
    assert figures["messages_acked"] == 1000
    assert result.ok, _report(result)
    assert figures["reconnects"] > 0  # the kills happened while customers were connected


@pytest.fixture
async def nodes_database() -> AsyncIterator[str]:
    if not PG_URL:
        message = "RELAYDESK_TEST_PG_URL is not set: the several-node load cannot run"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    name = f"relaydesk_load_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


@pytest.mark.postgres
async def test_three_nodes_on_postgresql_with_two_killed_lose_nothing(
    nodes_database: str, tmp_path: Path
) -> None:
    result = await run_load(
        LoadSettings(
            folder=tmp_path,
            database=nodes_database,
            nodes=3,
            messages=1000,
            visitors=8,
            bridge_senders=8,
            kills=2,
            seconds=240,
        )
    )
    figures = result.figures()
    assert result.finished, f"the load did not finish in time: {figures}"
    assert figures["messages_acked"] == 1000
    assert result.ok, _report(result)
