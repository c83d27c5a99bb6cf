"""An admin changes business hours and promises while the service runs, for every node."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.builders import utc_now
from router.inbox import hash_token
from router.keys import SCHEDULER
from router.storage import Database
from tests.support.clock import FakeClock
from tests.support.service import Service, running_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECTION: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "calendars": {"default": {"hours": {"daily": "09:00-21:00"}}},
}


@pytest.fixture
def clock() -> FakeClock:
    # Tuesday 1 December 2026, 10:00 in Shanghai.
    return FakeClock(datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI))


async def add_admin(service: Service, name: str) -> None:
    token = secrets.token_urlsafe(24)
    async with service.db.write() as repo:
        await repo.add_agent(name=name, token_hash=hash_token(token), now=utc_now(), role="admin")
    service.tokens[name] = token


@pytest.fixture
async def desk(database: Database, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Service]:
    overrides = {"sla": SECTION}
    async with running_service(
        tmp_path / "a", database=database, overrides=overrides, clock=clock, drive_sweeps=True
    ) as service:
        await service.add_agent("ana")
        await add_admin(service, "lead")
        yield service


async def notice(service: Service, sender: str) -> str:
    memory = service.memory
    before = len(memory.sent)
    await memory.inject(memory.message("talk to a person", external_id=sender, sender=sender))
    return (await memory.wait_for_sent(before + 1))[-1].text


async def test_only_admins_change_the_promises(desk: Service) -> None:
    status, error = await desk.api("ana", "PUT", "/api/agent/sla", json=SECTION)
    assert status == 403 and error["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"calendars": {"default": {"hours": {"daily": "21:00-21:00x"}}}}, "calendars.default"),
        ({"policies": [{"name": "p", "calendar": "missing"}]}, "not in sla.calendars"),
        ({"check_seconds": 1}, "sla.check_seconds: is set per node"),
        ({"calendars": {"d": {"always_open": True, "holiday_files": ["/etc/x"]}}}, "holiday"),
        ({"survey": "sometimes"}, "sla.survey: must be true or false"),
    ],
)
async def test_a_wrong_setting_is_refused_with_its_key_and_nothing_changes(
    desk: Service, section: dict[str, Any], says: str
) -> None:
    status, error = await desk.api("lead", "PUT", "/api/agent/sla", json=section)
    assert status == 400 and says in error["error"]["message"]
    assert "answer by 11:00" in await notice(desk, "unchanged")


async def test_a_new_day_off_applies_at_once_and_on_the_other_node_at_its_next_sweep(
    desk: Service, database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    overrides = {"sla": SECTION}
    async with running_service(
        tmp_path / "b", database=database, overrides=overrides, clock=clock, drive_sweeps=True
    ) as other:
        changed = {
            **SECTION,
            "calendars": {
                "default": {"hours": {"daily": "09:00-21:00"}, "holidays": ["2026-12-01"]}
            },
        }
        status, body = await desk.api("lead", "PUT", "/api/agent/sla", json=changed)
        assert status == 200 and body["calendars"][0]["open_now"] is False
        assert "open at 09:00 tomorrow" in await notice(desk, "here")
        # The other node still promises by config.yaml until it sweeps.
        assert "answer by 11:00" in await notice(other, "there-before")
        await other.app[SCHEDULER].run_due()
        assert "open at 09:00 tomorrow" in await notice(other, "there-after")
    # And a restart keeps the admin's version over config.yaml's.
    async with running_service(
        tmp_path / "c", database=database, overrides=overrides, clock=clock, drive_sweeps=True
    ) as restarted:
        assert "open at 09:00 tomorrow" in await notice(restarted, "after-restart")
