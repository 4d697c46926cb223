"""Time in one place, so tests and the office-hours core can inject a clock."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_START = time.monotonic()


def routing_now() -> datetime:
    """The instant office hours are judged by.

    ``BUERGERCHAT_NOW`` (ISO 8601 with offset, e.g. ``2026-11-19T10:00:00+01:00``)
    lets an admin try the rules at a chosen time (and the tests pin a weekday
    morning); the clock then runs on from there. Unset, it is the real time.
    """
    fixed = os.environ.get("BUERGERCHAT_NOW")
    if not fixed:
        return utcnow()
    start = datetime.fromisoformat(fixed)
    if start.tzinfo is None:
        raise ValueError("BUERGERCHAT_NOW needs a UTC offset, e.g. +01:00")
    return start.astimezone(UTC) + timedelta(seconds=time.monotonic() - _START)
