"""Business calendars: when a desk works, and time counted only while it does.

A calendar has a time zone, weekly hours (several windows a day: split shifts; a
window may run past midnight: ``22:00-06:00`` starts on its day and ends the next
morning), holidays (no hours at all that day) and make-up working days (China's
调休: a weekend day worked with the ``working_day_hours``). "Always open" is a 7×24
desk. Every promise (``add``) and every measure of how long something took
(``between``) counts only open time; windows are worked out in local wall time,
so a daylight-saving change moves them as a person would expect.

Presets ship with the product (``cn``: mainland China's public holidays and
make-up days, from the State Council's announcements).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

__all__ = [
    "HOLIDAY_NOTICE",
    "BusinessCalendar",
    "HolidaySet",
    "load_holidays",
    "parse_windows",
    "preset_holidays",
]

DAY = 24 * 60
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# How far ahead a calendar looks for open time before calling itself closed for good.
_HORIZON_DAYS = 800
# How long before a year begins a calendar that keeps holiday lists should have its
# days: China announces next year's in November.
HOLIDAY_NOTICE = timedelta(days=60)

Window = tuple[int, int]  # minutes after the day's midnight; end may pass 24:00


def parse_windows(spec: str | Sequence[str]) -> tuple[Window, ...]:
    """``"09:00-12:00"`` or a list of them; ``"22:00-06:00"`` runs into the next day,
    ``"00:00-24:00"`` is the whole day. ValueError says which window is wrong."""
    items = [spec] if isinstance(spec, str) else list(spec)
    windows: list[Window] = []
    for item in items:
        match = _WINDOW.match(str(item))
        if match is None:
            raise ValueError(f"{item!r} is not a window like 09:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{item!r} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            end += DAY  # overnight
        windows.append((start, end))
    windows.sort()
    for (_, end), (start, _) in pairwise(windows):
        if start < end:
            raise ValueError(f"windows overlap in {', '.join(map(str, items))}")
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class HolidaySet:
    """Days off and make-up working days."""

    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()

    def __or__(self, other: HolidaySet) -> HolidaySet:
        return HolidaySet(self.holidays | other.holidays, self.working_days | other.working_days)


def _dates(value: Any, where: str) -> Iterator[date]:
    if isinstance(value, date):
        yield value
    elif isinstance(value, str):
        try:
            yield date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {value!r} is not a date like 2026-10-01") from exc
    elif isinstance(value, Mapping) and "from" in value:
        first = next(_dates(value["from"], where))
        last = next(_dates(value.get("to", value["from"]), where))
        if last < first:
            raise ValueError(f"{where}: {first} to {last} runs backwards")
        for n in range((last - first).days + 1):
            yield first + timedelta(days=n)
    elif isinstance(value, Mapping) and "date" in value:
        yield from _dates(value["date"], where)
    else:
        raise ValueError(f"{where}: {value!r} is not a date or a {{from, to}} range")


def load_holidays(data: Mapping[str, Any], where: str = "holidays") -> HolidaySet:
    """A mapping with ``holidays`` (dates or ``{from, to}`` ranges) and
    ``working_days`` / ``working_weekend_days`` (make-up working days)."""
    holidays = {d for item in data.get("holidays") or () for d in _dates(item, where)}
    working = {
        d
        for key in ("working_days", "working_weekend_days")
        for item in data.get(key) or ()
        for d in _dates(item, where)
    }
    both = holidays & working
    if both:
        raise ValueError(f"{where}: {min(both)} is both a holiday and a working day")
    return HolidaySet(frozenset(holidays), frozenset(working))


def load_holiday_file(path: Path) -> HolidaySet:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping with holidays and working_days")
    return load_holidays(data, str(path))


PRESETS = ("cn",)


@cache
def preset_holidays(name: str) -> HolidaySet:
    """A shipped holiday list by name (``cn``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown holiday preset {name!r} (known: {', '.join(PRESETS)})")
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return load_holidays(yaml.safe_load(text), f"preset {name}")


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """When a desk is open. ``weekly[0]`` is Monday's windows."""

    name: str
    zone: ZoneInfo
    weekly: tuple[tuple[Window, ...], ...] = ((),) * 7
    days: HolidaySet = HolidaySet()
    working_day_hours: tuple[Window, ...] = ()
    always_open: bool = False
    # Whether the desk keeps holiday lists (a preset, a file or its own days): then a
    # year without any is a year whose holidays are missing, not a year without any.
    lists_holidays: bool = False
    _cache: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError("weekly hours need seven days")
        if not self.always_open and not any(self.weekly) and not self.days.working_days:
            raise ValueError(f"calendar {self.name!r} has no working hours at all")

    @classmethod
    def open_always(cls, name: str, zone: ZoneInfo) -> BusinessCalendar:
        return cls(name=name, zone=zone, always_open=True)

    def missing_holiday_years(self, today: date) -> list[int]:
        """The years that need holidays and have none: this one, and the next from
        ``HOLIDAY_NOTICE`` before it begins. Empty for a calendar without lists."""
        if self.always_open or not self.lists_holidays:
            return []
        covered = {d.year for d in self.days.holidays | self.days.working_days}
        wanted = [today.year]
        if date(today.year + 1, 1, 1) - today <= HOLIDAY_NOTICE:
            wanted.append(today.year + 1)
        return [year for year in wanted if year not in covered]

    # -- windows ---------------------------------------------------------------------

    def _local_windows(self, day: date) -> tuple[Window, ...]:
        if day in self.days.holidays:
            return ()
        if day in self.days.working_days and not self.weekly[day.weekday()]:
            return self.working_day_hours or next(w for w in self.weekly if w)
        return self.weekly[day.weekday()]

    def _windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The open intervals that start on ``day`` (local), in UTC."""
        cached = self._cache.get(day)
        if cached is None:
            cached = tuple(
                (self._at(day, start), self._at(day, end))
                for start, end in self._local_windows(day)
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[day] = cached
        return cached

    def _at(self, day: date, minutes: int) -> datetime:
        extra, minutes = divmod(minutes, DAY)
        local = datetime.combine(
            day + timedelta(days=extra), time(minutes // 60, minutes % 60), tzinfo=self.zone
        )
        return local.astimezone(UTC)

    def intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals from ``start`` on (the first clipped to it), in order, in UTC."""
        if self.always_open:
            yield start, datetime.max.replace(tzinfo=UTC)
            return
        day = start.astimezone(self.zone).date() - timedelta(days=1)  # overnight windows
        for _ in range(_HORIZON_DAYS):
            for begin, end in self._windows(day):
                if end > start:
                    yield max(begin, start), end
            day += timedelta(days=1)

    # -- questions -------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        for begin, _ in self.intervals(at):
            return begin <= at
        return False

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` if open then, else the next opening; None if never within two years."""
        for begin, _ in self.intervals(at):
            return begin
        return None

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of open time has passed since ``start``."""
        left = duration
        if left <= timedelta(0):
            return start
        for begin, end in self.intervals(start):
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise ValueError(f"calendar {self.name!r} has no open time within two years")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Open time from ``start`` to ``end`` (negative when ``end`` comes first)."""
        if end < start:
            return -self.between(end, start)
        total = timedelta(0)
        for begin, stop in self.intervals(start):
            if begin >= end:
                break
            total += min(stop, end) - begin
        return total


def weekly_hours(spec: Mapping[str, str | Sequence[str]]) -> tuple[tuple[Window, ...], ...]:
    """``{"mon-fri": "09:00-18:00", "sat": ["10:00-12:00", "13:00-17:00"]}`` → seven
    days of windows. Days: mon tue wed thu fri sat sun, ranges ``mon-fri``, ``daily``."""
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    days: list[tuple[Window, ...]] = [()] * 7
    for key, value in spec.items():
        for index in _day_keys(str(key).strip().lower(), names):
            days[index] = parse_windows(value) if value else ()
    return tuple(days)


def _day_keys(key: str, names: list[str]) -> Iterable[int]:
    if key in ("daily", "every day", "all"):
        return range(7)
    parts = [p.strip() for p in re.split(r"\s*,\s*", key)]
    out: list[int] = []
    for part in parts:
        first, _, last = part.partition("-")
        if first not in names or (last and last not in names):
            raise ValueError(f"{key!r}: days are mon tue wed thu fri sat sun, mon-fri or daily")
        a, b = names.index(first), names.index(last or first)
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return out
