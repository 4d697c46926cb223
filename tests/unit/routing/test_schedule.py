"""Weekdays, times, periods and dates as admins write them
(bridge.departments.schedule)."""

from __future__ import annotations

from datetime import date

import pytest

from bridge.departments.model import Period
from bridge.departments.schedule import (
    parse_date,
    parse_period,
    parse_time,
    weekdays_of,
)


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mo", (0,)),
        ("Montag", (0,)),
        ("MON", (0,)),
        ("di", (1,)),
        ("tue", (1,)),
        ("Mi", (2,)),
        ("wednesday", (2,)),
        ("do", (3,)),
        ("Do.", (3,)),
        ("thu", (3,)),
        ("fr", (4,)),
        ("sa", (5,)),
        ("Sonnabend", (5,)),
        ("so", (6,)),
        ("sun", (6,)),
        ("mo-fr", (0, 1, 2, 3, 4)),
        ("Mo – Mi", (0, 1, 2)),
        ("fr-mo", (4, 5, 6, 0)),
    ],
)
def test_weekday_names(key: str, days: tuple[int, ...]) -> None:
    """German and English names, short or long, and ranges name the right days."""
    assert weekdays_of(key) == days


@pytest.mark.parametrize("key", ["mx", "montags", "werktags", "mo-fr-sa", "1"])
def test_unknown_weekdays_are_refused(key: str) -> None:
    """Anything that is not a weekday gets a message listing the accepted names."""
    problem = weekdays_of(key)
    assert isinstance(problem, str)
    assert "is not a weekday" in problem


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("08:00-12:00", Period(480, 720)),
        ("8:00-12:00", Period(480, 720)),
        ("08.00 - 12.00", Period(480, 720)),
        ("08:00–12:00", Period(480, 720)),
        ("8:00 bis 9:30", Period(480, 570)),
        ("20:00-24:00", Period(1200, 1440)),
        ("00:00-00:01", Period(0, 1)),
    ],
)
def test_periods_in_the_usual_spellings(text: str, period: Period) -> None:
    """Colon or dot, hyphen, en dash or 'bis', and 24:00 as an end all work."""
    assert parse_period(text) == period


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8-12", "is not a time like 08:00"),
        ("08:00", "is not a period like 08:00-12:00"),
        ("08:00-25:00", "'25:00' is not a time between 00:00 and 24:00"),
        ("08:60-09:00", "'08:60' is not a time between 00:00 and 23:59"),
        ("24:00-24:00", "'24:00' is not a time between 00:00 and 23:59"),
        ("12:00-08:00", "ends before it starts"),
        ("22:00-02:00", "cannot cross midnight"),
        ("09:00-09:00", "is empty"),
    ],
)
def test_broken_periods_say_what_is_wrong(text: str, message: str) -> None:
    """Every broken period gets a message naming the problem."""
    problem = parse_period(text)
    assert isinstance(problem, str)
    assert message in problem


def test_24_00_only_ends_a_period() -> None:
    """24:00 is the end of the day, never a start."""
    assert parse_time("24:00", end=True) == 1440
    assert isinstance(parse_time("24:00"), str)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 12, 24), date(2026, 12, 24)),
        ("2026-12-24", date(2026, 12, 24)),
        ("24.12.2026", date(2026, 12, 24)),
        ("1.5.2026", date(2026, 5, 1)),
    ],
)
def test_dates_in_iso_and_german_form(value: object, expected: date) -> None:
    """YAML dates, ISO text and German DD.MM.YYYY all read as the same day."""
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["30.02.2026", "2026-13-01", "Heiligabend", "24.12."])
def test_broken_dates_are_refused(value: str) -> None:
    """Impossible or incomplete dates are reported, not guessed."""
    problem = parse_date(value)
    assert isinstance(problem, str)
    assert "is not a date" in problem
