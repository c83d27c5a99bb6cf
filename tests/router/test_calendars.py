"""Business calendars: promises count only the hours a desk works."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from router.builders import sla_policies
from router.calendars import BusinessCalendar, load_holidays, preset_holidays
from router.config import CalendarConfig, ConfigError
from router.conversations import Priority
from router.desk.sla import HolidayNotice, calendar_from
from tests.support.clock import FakeClock
from tests.support.inbox import InboxSession, add_inbox_agent
from tests.support.service import ROOT, SHARED, make_config, running_service

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)


def at(text: str, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def cal(**spec: Any) -> BusinessCalendar:
    return calendar_from("test", CalendarConfig(timezone="Asia/Shanghai", **spec), SHANGHAI)


REPAIRS = cal(hours={"daily": "09:00-21:00"})
OFFICE_CN = cal(hours={"mon-fri": "09:00-18:00"}, presets=["cn"])


def local(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI).replace(tzinfo=None)


def test_an_early_morning_handoff_is_due_an_hour_after_opening() -> None:
    # The bug that started it: at 05:57 the promise was "before 06:57".
    assert local(REPAIRS.add(at("2026-11-26T05:57"), HOUR)) == datetime(2026, 11, 26, 10, 0)
    assert not REPAIRS.is_open(at("2026-11-26T05:57"))
    assert local(REPAIRS.next_open(at("2026-11-26T05:57"))) == datetime(2026, 11, 26, 9, 0)


def test_a_minute_before_closing_carries_the_rest_into_the_next_morning() -> None:
    assert local(REPAIRS.add(at("2026-11-26T20:59"), HOUR)) == datetime(2026, 11, 27, 9, 59)


def test_a_public_holiday_is_skipped_until_the_first_working_day() -> None:
    # National Day week: 1–7 October 2026 are days off.
    assert local(OFFICE_CN.add(at("2026-10-01T10:00"), HOUR)) == datetime(2026, 10, 8, 10, 0)


def test_a_make_up_saturday_is_a_working_day_and_an_ordinary_one_is_not() -> None:
    # 调休: Saturday 10 October 2026 is worked; Saturday 17 October is not.
    assert local(OFFICE_CN.add(at("2026-10-10T10:00"), HOUR)) == datetime(2026, 10, 10, 11, 0)
    assert local(OFFICE_CN.add(at("2026-10-17T10:00"), HOUR)) == datetime(2026, 10, 19, 10, 0)


def test_a_split_shift_pauses_over_lunch() -> None:
    split = cal(hours={"mon-fri": ["09:00-12:00", "13:30-18:00"]})
    assert local(split.add(at("2026-11-26T11:30"), HOUR)) == datetime(2026, 11, 26, 14, 0)
    assert split.between(at("2026-11-26T11:00"), at("2026-11-26T14:00")) == 90 * timedelta(
        minutes=1
    )


def test_an_overnight_window_runs_past_midnight() -> None:
    night = cal(hours={"daily": "22:00-06:00"})
    assert local(night.add(at("2026-11-26T05:30"), HOUR)) == datetime(2026, 11, 26, 22, 30)
    assert local(night.add(at("2026-11-26T23:30"), HOUR)) == datetime(2026, 11, 27, 0, 30)
    assert night.is_open(at("2026-11-27T03:00"))


def test_always_open_counts_every_minute() -> None:
    hotline = cal(always_open=True)
    assert hotline.add(at("2026-10-01T03:00"), HOUR) == at("2026-10-01T04:00")
    assert hotline.is_open(at("2026-02-17T03:00"))


def test_time_is_wall_time_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    office = calendar_from("de", CalendarConfig(hours={"mon-fri": "09:00-17:00"}), berlin)
    # Friday 16:30 before the clocks go forward (29 March 2026): due Monday 09:30 local.
    due = office.add(at("2026-03-27T16:30", berlin), HOUR)
    assert due.astimezone(berlin).replace(tzinfo=None) == datetime(2026, 3, 30, 9, 30)


def test_open_time_between_two_moments_ignores_nights_and_holidays() -> None:
    assert OFFICE_CN.between(at("2026-09-30T17:00"), at("2026-10-08T10:00")) == 2 * HOUR
    assert OFFICE_CN.between(at("2026-10-08T10:00"), at("2026-09-30T17:00")) == -2 * HOUR


def test_the_shipped_china_preset_is_the_state_councils_2026_list() -> None:
    published = yaml.safe_load((SHARED / "data" / "calendars" / "cn-2026.yaml").read_text())
    assert preset_holidays("cn") == load_holidays(published)


def test_an_admin_adds_next_years_holidays_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "cn-2027.yaml").write_text(
        "holidays:\n  - {from: 2027-01-01, to: 2027-01-03}\nworking_days: [2027-01-04]\n"
    )
    config = make_config(
        tmp_path,
        {
            "sla": {
                "calendars": {
                    "default": {
                        "timezone": "Asia/Shanghai",
                        "hours": {"mon-fri": "09:00-18:00"},
                        "presets": ["cn"],
                        "holiday_files": ["cn-2027.yaml"],
                    }
                }
            }
        },
    )
    office = sla_policies(config).default.calendar
    assert local(office.add(at("2026-12-31T17:30"), HOUR)) == datetime(2027, 1, 4, 9, 30)


@pytest.mark.parametrize(
    ("sla", "says"),
    [
        ({"calendars": {"x": {"hours": {"mon": "25:00-26:00"}}}}, "not a time of day"),
        ({"calendars": {"x": {"hours": {"mon": "9-5"}}}}, "not a window like 09:00-18:00"),
        ({"calendars": {"x": {"hours": {"weekdays": "09:00-17:00"}}}}, "days are mon tue"),
        ({"calendars": {"x": {"hours": {}}}}, "always_open: true"),
        ({"calendars": {"x": {"always_open": True, "presets": ["us"]}}}, "unknown preset"),
        ({"calendars": {"x": {"always_open": True, "timezone": "Mars/Base"}}}, "time zone"),
        ({"policies": [{"name": "p", "calendar": "nope"}]}, "not in sla.calendars"),
        ({"policies": [{"name": "p", "first_response": "soon"}]}, "duration like 2h"),
        ({"policies": [{"name": "p", "escalate": "fire"}]}, "escalate"),
    ],
)
def test_a_broken_calendar_or_policy_is_refused_with_its_key_and_reason(
    tmp_path: Path, sla: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_config(tmp_path, {"sla": sla})
    assert "sla." in str(refused.value) and says in str(refused.value)


def test_policies_are_chosen_by_their_conditions_in_order(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        {
            "sla": {
                "calendars": {"repairs": {"hours": {"daily": "09:00-21:00"}}},
                "policies": [
                    {"name": "vip", "tags": ["vip"], "first_response": "15m"},
                    {
                        "name": "mail",
                        "channels": ["email"],
                        "calendar": "repairs",
                        "first_response": "2h",
                        "resolution": "3d",
                    },
                    {"name": "chat-zh", "languages": ["zh"], "first_response": {"normal": 5}},
                ],
            }
        },
    )
    policies = sla_policies(config)

    def chosen(**facts: Any) -> str:
        facts.setdefault("priority", Priority.NORMAL)
        return policies.choose(**facts).name

    assert chosen(channel="email", tags=["vip"]) == "vip"
    assert chosen(channel="email") == "mail"
    assert chosen(channel="webchat", language="zh") == "chat-zh"
    assert chosen(channel="webchat", language="en") == "default"
    mail = policies.named("mail")
    assert mail.first_response[Priority.LOW] == 2 * HOUR and mail.resolution == 72 * HOUR


# -- next year's holidays, before they are missed ----------------------------------------

CN_DESK: dict[str, Any] = {
    "sla": {
        "timezone": "Asia/Shanghai",
        "calendars": {"default": {"hours": {"mon-fri": "09:00-18:00"}, "presets": ["cn"]}},
    }
}
NEXT_YEAR = {
    "holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-01"}],
    "working_days": [],
}


def test_a_calendar_knows_which_years_it_lacks() -> None:
    assert OFFICE_CN.missing_holiday_years(at("2026-06-01T10:00").date()) == []
    # Sixty days before the new year, next year's holidays are due.
    assert OFFICE_CN.missing_holiday_years(at("2026-11-01T10:00").date()) == []
    assert OFFICE_CN.missing_holiday_years(at("2026-11-02T10:00").date()) == [2027]
    assert OFFICE_CN.missing_holiday_years(at("2027-03-01T10:00").date()) == [2027]
    # A desk that keeps no holiday lists lacks nothing.
    assert REPAIRS.missing_holiday_years(at("2026-12-20T10:00").date()) == []
    with_2027 = cal(hours={"mon-fri": "09:00-18:00"}, presets=["cn"], **NEXT_YEAR)
    assert with_2027.missing_holiday_years(at("2026-12-20T10:00").date()) == []


async def test_a_missing_year_is_said_on_healthz_the_admin_pages_and_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(at("2026-11-15T10:00"))
    async with running_service(tmp_path / "a", overrides=CN_DESK, clock=clock) as service:
        async with service.client.get("/healthz") as response:
            health = await response.json()
        assert response.status == 200, "a warning, not a failure"
        assert any("no holidays for 2027" in w for w in health["warnings"])
        await add_inbox_agent(service, "Boss", admin=True)
        boss = InboxSession(service)
        assert await boss.login("Boss") == 303
        for path in ("/inbox/admin", "/inbox/admin/sla"):
            page = await boss.get(path)
            assert 'id="holiday-gaps"' in page and 'data-year="2027"' in page
        queue = await boss.get("/inbox")
        assert 'id="holiday-gaps"' not in queue, "admin pages only"
        await boss.close()
    assert "calendar 'default' has no holidays for 2027" in caplog.text

    # Next year's list in a file: nothing to say any more.
    year_file = tmp_path / "cn-2027.yaml"
    year_file.write_text(yaml.safe_dump(NEXT_YEAR, allow_unicode=True), encoding="utf-8")
    added = {
        "sla": {
            **CN_DESK["sla"],
            "calendars": {
                "default": {
                    **CN_DESK["sla"]["calendars"]["default"],
                    "holiday_files": [str(year_file)],
                }
            },
        }
    }
    async with running_service(tmp_path / "b", overrides=added, clock=clock) as service:
        async with service.client.get("/healthz") as response:
            health = await response.json()
        assert not any("holidays" in w for w in health.get("warnings", []))


async def test_the_notice_is_logged_once_a_day_until_the_year_is_added(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policies = sla_policies(make_config(tmp_path, CN_DESK))
    clock = FakeClock(at("2026-11-15T10:00"))
    notice = HolidayNotice(lambda: policies, clock)
    await notice()
    await notice()
    clock.advance(hours=1)
    await notice()
    assert caplog.text.count("no holidays for 2027") == 1
    clock.advance(days=1)
    await notice()
    assert caplog.text.count("no holidays for 2027") == 2


def test_calendars_check_says_which_years_are_missing(tmp_path: Path) -> None:
    make_config(tmp_path, CN_DESK)
    config = str(tmp_path / "config.yaml")

    def check(day: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "router.cli",
                "calendars",
                "check",
                "--on",
                day,
                "--config",
                config,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    summer = check("2026-06-01")
    assert summer.returncode == 0, summer.stderr
    assert "default: holidays for 2026" in summer.stdout
    winter = check("2026-11-15")
    assert winter.returncode == 1
    assert "no holidays for 2027" in winter.stdout
