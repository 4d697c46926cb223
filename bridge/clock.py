"""Time in one place: every "now" of the bridge and the bots is :func:`utcnow`
(or :func:`routing_now` for office hours), read from one clock that the tests
replace with :class:`FakeClock` (:func:`use_clock`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class Clock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock(Clock):
    """A clock that stands still until a test moves it; calling it is ``now()``
    (so it serves where a ``Callable[[], datetime]`` clock is expected)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float = 0.0, **parts: float) -> datetime:
        """Move on by ``delta`` (a timedelta, or seconds) plus ``parts``
        (``minutes=5``)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._now += step + timedelta(**parts)
        return self._now


_clock: Clock = Clock()
_STARTED = datetime.now(UTC)


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Read time from ``clock`` inside the block (tests)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous


def utcnow() -> datetime:
    return _clock.now()


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def routing_now() -> datetime:
    """The instant office hours are judged by.

    ``BUERGERCHAT_NOW`` (ISO 8601 with offset, e.g. ``2026-11-19T10:00:00+01:00``)
    lets an admin try the rules at a chosen time (and the tests pin a weekday
    morning): the process starts at that instant and the clock runs on from
    there. Unset, it is :func:`utcnow`.
    """
    fixed = os.environ.get("BUERGERCHAT_NOW")
    if not fixed:
        return utcnow()
    start = datetime.fromisoformat(fixed)
    if start.tzinfo is None:
        raise ValueError("BUERGERCHAT_NOW needs a UTC offset, e.g. +01:00")
    return utcnow() + (start.astimezone(UTC) - _STARTED)


def real_time(moment: datetime) -> datetime:
    """The instant of the real clock at which the town's clock
    (:func:`routing_now`) shows ``moment``: where a timer for a time of the
    town's day is set (an appointment's reminder) while ``BUERGERCHAT_NOW``
    shifts the town's clock."""
    return moment - (routing_now() - utcnow())
