"""Small builders for routing rules in tests: hours written as admins write them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bridge.departments.model import Closure, Department, Period, RoutingRules, Staff
from bridge.departments.schedule import parse_period, weekdays_of

BERLIN = ZoneInfo("Europe/Berlin")
ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"
CLARA = "@clara.wagner:buergerchat.localhost"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock moment in Berlin."""
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def periods(*texts: str) -> tuple[Period, ...]:
    parsed = [parse_period(t) for t in texts]
    assert all(isinstance(p, Period) for p in parsed), parsed
    return tuple(p for p in parsed if isinstance(p, Period))


def week(hours: dict[str, list[str]]) -> tuple[tuple[Period, ...], ...]:
    days: list[tuple[Period, ...]] = [() for _ in range(7)]
    for key, texts in hours.items():
        indexes = weekdays_of(key)
        assert not isinstance(indexes, str), indexes
        for index in indexes:
            days[index] = days[index] + periods(*texts)
    return tuple(days)


def department(
    dep_id: str = "buergerbuero",
    hours: dict[str, list[str]] | None = None,
    staff: tuple[str, ...] = (ANNA,),
    **fields: Any,
) -> Department:
    return Department(
        id=dep_id,
        name=dep_id.title(),
        staff=tuple(Staff(m) for m in staff),
        week=week(hours or {}),
        **fields,
    )


def rules(
    *departments: Department,
    subdivision: str | None = "BW",
    closures: tuple[Closure, ...] = (),
) -> RoutingRules:
    return RoutingRules(
        departments=departments, subdivision=subdivision, closures=closures
    )


def closure(
    first: date, last: date | None = None, start: str = "00:00", end: str = "24:00"
) -> Closure:
    (period,) = periods(f"{start}-{end}")
    return Closure(first, last or first, period.start, period.end, "geschlossen")
