"""kill -9 under load: real `relaydesk serve` processes behind a round-robin proxy,
web-chat visitors, bridge customers, mail customers (SMTP) and Telegram chats (webhook)
following the documented protocols, nodes
killed at random moments and restarted. Nothing acknowledged is lost or stored twice,
every reply the service made reaches its customer once, every conversation is valid.

CI size (about 1,000 messages, two kills); the full size is `bench/load.py --kills`
(README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.load import LoadSettings, run_load

pytestmark = pytest.mark.slow


async def assert_nothing_lost(settings: LoadSettings) -> None:
    result = await run_load(settings)
    figures = result.figures()
    assert result.finished, f"the load did not finish in time: {figures}"
    assert figures["messages_acked"] == settings.messages
    assert result.ok, f"faults {figures['fault_examples']}, counts {figures['counts']}"
    # The kills happened while customers were connected or had a message in flight.
    assert figures["reconnects"] + figures["resent"] > 0
    # Every channel carried its share, and answers came back on each.
    for channel, carried in figures["by_channel"].items():
        assert carried["acked"] > 0 and carried["reply_ms"]["p50"] is not None, channel


async def test_one_node_on_sqlite_killed_twice_loses_nothing(tmp_path: Path) -> None:
    await assert_nothing_lost(
        LoadSettings(
            folder=tmp_path,
            database=f"sqlite+aiosqlite:///{tmp_path / 'relaydesk.db'}",
            messages=1000,
            visitors=6,
            bridge_senders=6,
            mail_senders=4,
            telegram_chats=4,
            kills=2,
            seconds=240,
        )
    )


@pytest.mark.postgres
async def test_three_nodes_on_postgresql_with_two_killed_lose_nothing(
    shared_database: str, tmp_path: Path
) -> None:
    await assert_nothing_lost(
        LoadSettings(
            folder=tmp_path,
            database=shared_database,
            nodes=3,
            messages=1000,
            visitors=6,
            bridge_senders=6,
            mail_senders=4,
            telegram_chats=4,
            kills=2,
            seconds=240,
        )
    )
