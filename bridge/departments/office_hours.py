"""Is a department live now, until when, and when does it open next?

Pure functions over :class:`~bridge.departments.model.RoutingRules` and an
injected, aware
``now``. Periods are wall-clock times in the rules' time zone; a period covers every
moment the wall clock shows a time inside it. On the spring DST night the skipped
hour does not exist (02:00-03:00 is never live that night, 02:30-04:00 opens at
03:00); on the autumn night a period that starts in the repeated hour starts at its
first occurrence and one that ends in it ends at its second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import Department, Period, RoutingRules

__all__ = [
    "HORIZON_DAYS",
    "LiveStatus",
    "day_note",
    "is_live",
    "live_intervals",
    "next_opening",
    "periods_on",
]

# How far ahead the next opening is searched before saying "never".
HORIZON_DAYS = 400


@dataclass(frozen=True)
class LiveStatus:
    """``until``: end of the current live time (if live). ``next_opening``: the next
    start after now (if closed) or after ``until`` (if live). Both in local time.
    ``note``: why today differs from the weekly hours (holiday, closure, exception)."""

    live: bool
    until: datetime | None
    next_opening: datetime | None
    note: str | None = None


def periods_on(
    department: Department, rules: RoutingRules, day: date
) -> tuple[Period, ...]:
    """The live periods of ``department`` on ``day``.

    A date exception of the department replaces the weekly hours (even on a public
    holiday); otherwise public holidays close the day; closures of the whole
    administration (full or half days) always cut their time out.
    """
    exception = department.exception_on(day)
    if exception is not None:
        periods = exception.periods
    elif rules.holiday(day) is not None:
        periods = ()
    else:
        periods = department.week[day.weekday()]
    for closure in rules.closure_on(day):
        periods = _cut(periods, closure.start, closure.end)
    return tuple(sorted(periods, key=lambda p: p.start))


def day_note(department: Department, rules: RoutingRules, day: date) -> str | None:
    """Why ``day`` differs from the weekly hours, in words citizens understand."""
    exception = department.exception_on(day)
    if exception is not None and exception.note:
        return exception.note
    holiday = rules.holiday(day)
    if holiday is not None and exception is None:
        return holiday
    return next((c.note for c in rules.closure_on(day) if c.note), None)


def is_live(
    department: Department,
    rules: RoutingRules,
    now: datetime,
    horizon_days: int = HORIZON_DAYS,
) -> LiveStatus:
    """Whether ``department`` is live at ``now``, until when, and its next opening
    (searched at most ``horizon_days`` ahead; None if it never opens in that time)."""
    now_utc = _utc(now)
    zone = rules.zone
    today = now_utc.astimezone(zone).date()
    note = day_note(department, rules, today)
    intervals = live_intervals(
        department, rules, today - timedelta(days=1), horizon_days + 2
    )
    for start, end in intervals:
        if end <= now_utc:
            continue
        if start > now_utc:
            return LiveStatus(False, None, start.astimezone(zone), note)
        following = next(intervals, None)
        return LiveStatus(
            True,
            end.astimezone(zone),
            following[0].astimezone(zone) if following else None,
            note,
        )
    return LiveStatus(False, None, None, note)


def next_opening(
    department: Department,
    rules: RoutingRules,
    after: datetime,
    horizon_days: int = HORIZON_DAYS,
) -> datetime | None:
    """The first moment after ``after`` at which ``department`` becomes live."""
    status = is_live(department, rules, after, horizon_days)
    return status.next_opening


def live_intervals(
    department: Department, rules: RoutingRules, first: date, days: int
) -> Iterator[tuple[datetime, datetime]]:
    """Live time of ``days`` days from ``first`` on as UTC intervals, in order, with
    touching or overlapping periods (also across midnight) merged into one."""
    zone = rules.zone
    pending: tuple[datetime, datetime] | None = None
    for offset in range(days):
        day = first + timedelta(days=offset)
        for period in periods_on(department, rules, day):
            start = _instant(day, period.start, zone, latest=False)
            end = _instant(day, period.end, zone, latest=True)
            if end <= start:
                continue
            if pending is not None and start <= pending[1]:
                pending = (pending[0], max(pending[1], end))
                continue
            if pending is not None:
                yield pending
            pending = (start, end)
    if pending is not None:
        yield pending


def _cut(periods: tuple[Period, ...], start: int, end: int) -> tuple[Period, ...]:
    """``periods`` without the time from ``start`` to ``end``."""
    kept: list[Period] = []
    for period in periods:
        if period.start < min(period.end, start):
            kept.append(Period(period.start, min(period.end, start)))
        if max(period.start, end) < period.end:
            kept.append(Period(max(period.start, end), period.end))
    return tuple(kept)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


def _instant(day: date, minute: int, zone: ZoneInfo, *, latest: bool) -> datetime:
    """The UTC instant at which the wall clock in ``zone`` shows ``minute`` on ``day``.

    A repeated wall time (autumn) gives its first occurrence, or its second when
    ``latest``; a skipped wall time (spring) gives the first instant after the gap.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if _exists(wall, zone):
        return max(first, second) if latest else min(first, second)
    while not _exists(wall, zone):
        wall += timedelta(minutes=1)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    roundtrip = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return roundtrip.replace(tzinfo=None) == wall
