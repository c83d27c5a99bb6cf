"""The ``sla`` section: business calendars and the promises kept in them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from router.config.base import Section

__all__ = ["KEY", "CalendarConfig", "SlaConfig", "SlaPolicyConfig", "parse_minutes"]

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


def parse_minutes(value: int | float | str) -> float:
    """Minutes from ``90``, ``"90m"``, ``"2h"``, ``"1h30m"`` or ``"3d"``."""
    if isinstance(value, bool):
        raise ValueError("must be minutes (90) or a duration like 2h, 30m, 3d")
    if isinstance(value, int | float):
        minutes = float(value)
    else:
        match = _DURATION.match(value)
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not minutes (90) or a duration like 2h, 30m, 3d")
        d, h, m = (int(g or 0) for g in match.groups())
        minutes = float(d * 24 * 60 + h * 60 + m)
    if minutes <= 0:
        raise ValueError("must be more than zero")
    return minutes


Duration = int | float | str


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class CalendarConfig(Section):
    # IANA time zone of the desk, e.g. Asia/Shanghai; empty: sla.timezone.
    timezone: str = ""
    # 7x24: every minute counts.
    always_open: bool = False
    # Day (mon..sun, ranges like mon-fri, or daily) -> "09:00-18:00" or a list of
    # windows (split shifts); "22:00-06:00" runs overnight.
    hours: dict[str, str | list[str]] = Field(default_factory=dict)
    # Hours of a make-up working day that normally has none (调休); empty: the first
    # weekday's hours.
    working_day_hours: str | list[str] = ""
    # Shipped holiday lists by name (cn: mainland China), days off and make-up days.
    presets: list[str] = Field(default_factory=list)
    holidays: list[str | dict[str, Any]] = Field(default_factory=list)
    working_days: list[str] = Field(default_factory=list)
    # Files shaped like the presets (next year's announcement, say).
    holiday_files: list[Path] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value) if value else value

    @model_validator(mode="after")
    def _valid(self) -> CalendarConfig:
        from router.calendars import PRESETS, load_holidays, parse_windows, weekly_hours

        days = weekly_hours(self.hours)
        if self.working_day_hours:
            parse_windows(self.working_day_hours)
        for name in self.presets:
            if name not in PRESETS:
                raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
        load_holidays({"holidays": self.holidays, "working_days": self.working_days})
        if not self.always_open and not any(days):
            raise ValueError("hours: give the working hours, or always_open: true")
        return self


# A name that rules, the API and URLs use: letters, digits, _ . -
KEY = r"^[A-Za-z0-9_.-]{1,60}$"
_ESCALATIONS = Literal["none", "raise_priority", "unassign"]
_METRIC_KEYS = ("first_response", "next_response", "resolution")


class SlaPolicyConfig(Section):
    name: str = Field(pattern=KEY)
    # Conditions; a policy applies when every given one matches (empty: any).
    channels: list[str] = Field(default_factory=list)
    priorities: list[Literal["low", "normal", "high", "urgent"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    # Teams (keys of routing.teams) whose conversations the policy is for.
    teams: list[str] = Field(default_factory=list)
    calendar: str = "default"
    # Targets in open time of the calendar: minutes or 2h / 30m / 3d; first_response
    # may be one per priority. null: no target.
    first_response: Duration | dict[str, Duration] | None = None
    next_response: Duration | None = None
    resolution: Duration | None = None
    # Warn this long (open time) before a target is missed.
    warn_before: Duration = 15
    # What happens on a breach besides the alerts.
    escalate: _ESCALATIONS = "none"
    # A follow-up message this long after resolution (null: none).
    follow_up: Duration | None = None

    @model_validator(mode="after")
    def _valid(self) -> SlaPolicyConfig:
        first = self.first_response
        if isinstance(first, dict):
            unknown = set(first) - {"low", "normal", "high", "urgent"}
            if unknown:
                raise ValueError(f"first_response: unknown priorities {sorted(unknown)}")
            for value in first.values():
                parse_minutes(value)
        elif first is not None:
            parse_minutes(first)
        for key in ("next_response", "resolution", "warn_before", "follow_up"):
            value = getattr(self, key)
            if value is not None:
                try:
                    parse_minutes(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from exc
        return self


class SlaConfig(Section):
    timezone: str = "UTC"
    # First-response promise per priority, in minutes: the default policy's, used when
    # no policies are given.
    first_response_minutes: dict[str, int] = Field(
        default_factory=lambda: {"low": 240, "normal": 60, "high": 15, "urgent": 5}
    )
    # Business calendars by name; without one named "default", the default is always
    # open in ``timezone``.
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    # Chosen in order, the first whose conditions match; none matching: a "default"
    # policy from first_response_minutes on the default calendar.
    policies: list[SlaPolicyConfig] = Field(default_factory=list)
    # Told of every warning and breach (and low ratings), besides the assignee.
    supervisor_email: str = ""
    # How often due promises, follow-ups and reminders are checked.
    check_seconds: float = Field(default=30.0, gt=0)
    # Ask for a rating (1-5) when a conversation a person answered is resolved.
    survey: bool = True
    # A rating at or below this tells the supervisor.
    low_rating: int = Field(default=2, ge=0, le=5)
    # A reply to a survey or follow-up is taken within this many days of it.
    answer_window_days: float = Field(default=7.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("first_response_minutes")
    @classmethod
    def _all_priorities(cls, value: dict[str, int]) -> dict[str, int]:
        known = {"low", "normal", "high", "urgent"}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown priorities: {', '.join(sorted(unknown))}")
        missing = known - set(value)
        if missing:
            raise ValueError(f"missing priorities: {', '.join(sorted(missing))}")
        if any(minutes <= 0 for minutes in value.values()):
            raise ValueError("every target must be a positive number of minutes")
        return value

    @model_validator(mode="after")
    def _references(self) -> SlaConfig:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError("policies: two policies have the same name")
        for policy in self.policies:
            if policy.calendar != "default" and policy.calendar not in self.calendars:
                raise ValueError(
                    f"policies: {policy.name!r} names calendar {policy.calendar!r}, "
                    "which is not in sla.calendars"
                )
        if self.supervisor_email and not re.fullmatch(
            r"[^@\s]+@[^@\s]+\.[^@\s]+", self.supervisor_email
        ):
            raise ValueError(f"supervisor_email: {self.supervisor_email!r} is not an address")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
