"""Service promises: which policy a conversation is under, and its targets.

A policy is chosen by conditions (channel, priority, tag, language, team), in order, the
first that matches; its targets (first response, next response, resolution) are
counted in its business calendar (``router.calendars``). The clock that keeps them
is ``router.desk.promises``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from router.calendars import (
    BusinessCalendar,
    HolidaySet,
    load_holiday_file,
    load_holidays,
    parse_windows,
    preset_holidays,
    weekly_hours,
)
from router.config import ConfigError
from router.config.sla import CalendarConfig, SlaConfig, SlaPolicyConfig, parse_minutes
from router.conversations import Priority

__all__ = [
    "Escalation",
    "HolidayNotice",
    "Metric",
    "SlaPolicies",
    "SlaPolicy",
    "calendar_from",
    "holiday_gaps",
    "missing_holidays",
    "policies_from",
]

logger = logging.getLogger(__name__)


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class Escalation(StrEnum):
    NONE = "none"
    RAISE_PRIORITY = "raise_priority"
    UNASSIGN = "unassign"


@dataclass(frozen=True)
class SlaPolicy:
    """Targets in one calendar, for the conversations its conditions match."""

    name: str
    calendar: BusinessCalendar
    first_response: Mapping[Priority, timedelta] = field(default_factory=dict)
    next_response: timedelta | None = None
    resolution: timedelta | None = None
    warn_before: timedelta = timedelta(minutes=15)
    escalate: Escalation = Escalation.NONE
    follow_up: timedelta | None = None
    channels: frozenset[str] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    tags: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return self.calendar.zone

    def matches(
        self,
        *,
        channel: str,
        priority: Priority,
        tags: Iterable[str],
        language: str | None,
        team: str | None = None,
    ) -> bool:
        return (
            (not self.channels or channel in self.channels)
            and (not self.priorities or priority in self.priorities)
            and (not self.tags or bool(self.tags & set(tags)))
            and (not self.languages or (language or "") in self.languages)
            and (not self.teams or (team or "") in self.teams)
        )

    def target(self, metric: Metric, priority: Priority) -> timedelta | None:
        if metric is Metric.FIRST_RESPONSE:
            return self.first_response.get(priority)
        if metric is Metric.NEXT_RESPONSE:
            return self.next_response
        return self.resolution

    def due(self, priority: Priority, now: datetime) -> datetime | None:
        """When the first response is due for a handoff at ``now``."""
        target = self.first_response.get(priority)
        return None if target is None else self.calendar.add(now, target)


@dataclass(frozen=True)
class SlaPolicies:
    """The configured policies in order, the default last; calendars by name."""

    policies: Sequence[SlaPolicy]
    default: SlaPolicy
    supervisor_email: str | None = None
    low_rating: int = 2
    survey: bool = True
    answer_window: timedelta = timedelta(days=7)
    # Every calendar by name, used by a policy or not (routing rules read them too).
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return self.default.zone

    def calendar(self, name: str) -> BusinessCalendar:
        """The calendar called ``name``; the default policy's if there is none."""
        return self.calendars.get(name, self.default.calendar)

    def choose(
        self,
        *,
        channel: str,
        priority: Priority,
        tags: Iterable[str] = (),
        language: str | None = None,
        team: str | None = None,
    ) -> SlaPolicy:
        tags = tuple(tags)
        for policy in self.policies:
            if policy.matches(
                channel=channel, priority=priority, tags=tags, language=language, team=team
            ):
                return policy
        return self.default

    def named(self, name: str | None) -> SlaPolicy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        return self.default

    @classmethod
    def simple(
        cls, minutes: Mapping[str, int], zone: ZoneInfo, *, calendar: BusinessCalendar | None = None
    ) -> SlaPolicies:
        """First-response minutes per priority on one calendar (always open by default)."""
        return cls(
            policies=(),
            default=SlaPolicy(
                name="default",
                calendar=calendar or BusinessCalendar.open_always("default", zone),
                first_response={
                    Priority.parse(k): timedelta(minutes=v) for k, v in minutes.items()
                },
            ),
        )


def holiday_gaps(policies: SlaPolicies, now: datetime) -> list[tuple[str, int]]:
    """``(calendar, year)`` for each calendar that keeps holiday lists and has none for
    this year, or for next year from two months before it begins."""
    return [
        (name, year)
        for name, calendar in sorted(policies.calendars.items())
        for year in calendar.missing_holiday_years(now.astimezone(calendar.zone).date())
    ]


def missing_holidays(policies: SlaPolicies, now: datetime) -> list[str]:
    """:func:`holiday_gaps`, said for the log and ``/healthz``."""
    return [
        f"calendar {name!r} has no holidays for {year}: promises and follow-ups in {year} "
        "will count its public holidays as working days. Add them on the admin page "
        f"(business hours) or in sla.calendars.{name}.holiday_files"
        for name, year in holiday_gaps(policies, now)
    ]


class HolidayNotice:
    """Says :func:`missing_holidays` in the log at start and once a day after (a
    scheduler chore), until the years are added."""

    def __init__(self, policies: Callable[[], SlaPolicies], clock: Callable[[], datetime]) -> None:
        self._policies = policies
        self._clock = clock
        self._said_on: date | None = None

    async def __call__(self) -> None:
        now = self._clock()
        if self._said_on == now.date():
            return
        self._said_on = now.date()
        for warning in missing_holidays(self._policies(), now):
            logger.warning("%s", warning)


# -- from the sla section ------------------------------------------------------


def calendar_from(name: str, spec: CalendarConfig, zone: ZoneInfo) -> BusinessCalendar:
    """A business calendar from its configuration (presets and files read now)."""
    tz = ZoneInfo(spec.timezone) if spec.timezone else zone
    if spec.always_open:
        return BusinessCalendar.open_always(name, tz)
    days = HolidaySet()
    for preset in spec.presets:
        days |= preset_holidays(preset)
    for path in spec.holiday_files:
        try:
            days |= load_holiday_file(path)
        except ValueError as exc:
            raise ConfigError(f"sla.calendars.{name}.holiday_files: {exc}") from exc
    own = load_holidays({"holidays": spec.holidays, "working_days": spec.working_days})
    # The desk's own list wins over a preset's for the same day.
    days = HolidaySet(
        (days.holidays - own.working_days) | own.holidays,
        (days.working_days - own.holidays) | own.working_days,
    )
    return BusinessCalendar(
        name=name,
        zone=tz,
        weekly=weekly_hours(spec.hours),
        days=days,
        working_day_hours=parse_windows(spec.working_day_hours) if spec.working_day_hours else (),
        lists_holidays=bool(
            spec.presets or spec.holiday_files or spec.holidays or spec.working_days
        ),
    )


def _minutes(value: int | float | str | None) -> timedelta | None:
    return None if value is None else timedelta(minutes=parse_minutes(value))


def _policy(spec: SlaPolicyConfig, calendars: dict[str, BusinessCalendar]) -> SlaPolicy:
    first = spec.first_response
    if isinstance(first, dict):
        first_response = {
            Priority.parse(k): timedelta(minutes=parse_minutes(v)) for k, v in first.items()
        }
    elif first is not None:
        first_response = {p: timedelta(minutes=parse_minutes(first)) for p in Priority}
    else:
        first_response = {}
    return SlaPolicy(
        name=spec.name,
        calendar=calendars[spec.calendar],
        first_response=first_response,
        next_response=_minutes(spec.next_response),
        resolution=_minutes(spec.resolution),
        warn_before=_minutes(spec.warn_before) or timedelta(minutes=15),
        escalate=Escalation(spec.escalate),
        follow_up=_minutes(spec.follow_up),
        channels=frozenset(spec.channels),
        priorities=frozenset(Priority.parse(p) for p in spec.priorities),
        tags=frozenset(spec.tags),
        languages=frozenset(spec.languages),
        teams=frozenset(spec.teams),
    )


def policies_from(sla: SlaConfig) -> SlaPolicies:
    """The promises of one ``sla`` section (config.yaml's, or what an admin saved)."""
    calendars = {name: calendar_from(name, spec, sla.zone) for name, spec in sla.calendars.items()}
    calendars.setdefault("default", BusinessCalendar.open_always("default", sla.zone))
    simple = SlaPolicies.simple(sla.first_response_minutes, sla.zone, calendar=calendars["default"])
    return SlaPolicies(
        policies=tuple(_policy(p, calendars) for p in sla.policies),
        default=simple.default,
        supervisor_email=sla.supervisor_email or None,
        low_rating=sla.low_rating,
        survey=sla.survey,
        answer_window=timedelta(days=sla.answer_window_days),
        calendars=calendars,
    )
