"""Live now, until when, next opening (bridge.departments.office_hours)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bridge.departments.model import DateException, RoutingRules
from bridge.departments.office_hours import (
    LiveStatus,
    is_live,
    next_opening,
    periods_on,
)

from .build import BERLIN, closure, department, local, periods, rules, utc

THURSDAY = department(hours={"do": ["09:00-12:00"]})
TWO_PERIODS = department(hours={"di": ["08:00-12:00", "14:00-16:00"]})
WEEKDAYS = department(hours={"mo-fr": ["08:00-12:00"]})


def on(day: date, *texts: str, note: str | None = None) -> DateException:
    """A one-day exception with the given periods (none: closed)."""
    return DateException(day, day, periods(*texts), note)


def as_utc(moment: datetime | None) -> datetime | None:
    """Aware datetimes in one zone compare by wall clock; compare instants instead."""
    return moment.astimezone(UTC) if moment is not None else None


# --- period edges ---------------------------------------------------------------


def test_live_one_minute_before_the_period_ends() -> None:
    """At 11:59 a 09:00-12:00 period is live, until 12:00 the same day."""
    status = is_live(THURSDAY, rules(THURSDAY), local(2026, 11, 26, 11, 59))
    assert status.live
    assert status.until == local(2026, 11, 26, 12, 0)


def test_not_live_at_the_end_of_the_period() -> None:
    """At 12:00 a 09:00-12:00 period is over; next opening is next Thursday 9:00."""
    status = is_live(THURSDAY, rules(THURSDAY), local(2026, 11, 26, 12, 0))
    assert not status.live
    assert status.until is None
    assert status.next_opening == local(2026, 12, 3, 9, 0)


def test_live_from_the_first_minute_of_the_period() -> None:
    """The start is included: 09:00 is live, 08:59:59 is not and opens at 09:00."""
    assert is_live(THURSDAY, rules(THURSDAY), local(2026, 11, 26, 9, 0)).live
    before = is_live(
        THURSDAY, rules(THURSDAY), local(2026, 11, 26, 8, 59) + timedelta(seconds=59)
    )
    assert not before.live
    assert before.next_opening == local(2026, 11, 26, 9, 0)


def test_now_in_another_zone_is_read_as_the_same_instant() -> None:
    """08:30 UTC on a winter Thursday is 09:30 in Berlin: live until 12:00 Berlin."""
    status = is_live(THURSDAY, rules(THURSDAY), utc(2026, 11, 26, 8, 30))
    assert status.live
    assert status.until == utc(2026, 11, 26, 11, 0)
    assert status.until is not None and status.until.utcoffset() == timedelta(hours=1)


def test_naive_now_is_refused() -> None:
    """A clock without a time zone is a bug in the caller, not a time in Berlin."""
    with pytest.raises(ValueError, match="timezone-aware"):
        is_live(THURSDAY, rules(THURSDAY), datetime(2026, 11, 26, 10, 0))


# --- several periods a day ------------------------------------------------------


def test_between_two_periods_the_next_opening_is_the_afternoon() -> None:
    """At 12:30 on a Tuesday with 08-12 and 14-16 the next opening is 14:00."""
    status = is_live(TWO_PERIODS, rules(TWO_PERIODS), local(2026, 11, 24, 12, 30))
    assert not status.live
    assert status.next_opening == local(2026, 11, 24, 14, 0)


def test_live_in_the_morning_period_tells_the_afternoon_opening() -> None:
    """Live at 11:00 until 12:00; the next opening after that is 14:00."""
    status = is_live(TWO_PERIODS, rules(TWO_PERIODS), local(2026, 11, 24, 11, 0))
    assert status.live
    assert status.until == local(2026, 11, 24, 12, 0)
    assert status.next_opening == local(2026, 11, 24, 14, 0)


def test_live_in_the_second_period_of_the_day() -> None:
    """At 15:59 the afternoon period is live until 16:00."""
    status = is_live(TWO_PERIODS, rules(TWO_PERIODS), local(2026, 11, 24, 15, 59))
    assert status.live
    assert status.until == local(2026, 11, 24, 16, 0)


def test_touching_periods_are_one_live_time() -> None:
    """08-12 and 12-14 read as live until 14:00, not a closing at noon."""
    dep = department(hours={"mo": ["08:00-12:00", "12:00-14:00"]})
    status = is_live(dep, rules(dep), local(2026, 11, 23, 11, 0))
    assert status.until == local(2026, 11, 23, 14, 0)


def test_live_time_runs_on_across_midnight() -> None:
    """20:00-24:00 on Monday and 00:00-02:00 on Tuesday: live until Tuesday 02:00."""
    dep = department(hours={"mo": ["20:00-24:00"], "di": ["00:00-02:00"]})
    status = is_live(dep, rules(dep), local(2026, 11, 23, 23, 0))
    assert status.live
    assert status.until == local(2026, 11, 24, 2, 0)


# --- next opening over weekends, holidays, never --------------------------------


def test_next_opening_over_the_weekend() -> None:
    """Friday 12:00 (closed) opens next on Monday 08:00."""
    status = is_live(WEEKDAYS, rules(WEEKDAYS), local(2026, 11, 27, 12, 0))
    assert not status.live
    assert status.next_opening == local(2026, 11, 30, 8, 0)


def test_next_opening_skips_the_christmas_holidays_and_the_weekend() -> None:
    """Thursday 24.12. after 12:00 → 25./26. holidays, weekend → Monday 28.12."""
    dep = department(hours={"mo-fr": ["08:00-12:00"]})
    status = is_live(dep, rules(dep), local(2026, 12, 24, 12, 0))
    assert status.next_opening == local(2026, 12, 28, 8, 0)


def test_next_opening_skips_a_holiday() -> None:
    """Wednesday before Christi Himmelfahrt: the Thursday slot is skipped a week."""
    status = is_live(THURSDAY, rules(THURSDAY), local(2026, 5, 13, 18, 0))
    assert status.next_opening == local(2026, 5, 21, 9, 0)


def test_next_opening_helper_matches_the_status() -> None:
    """next_opening() is the same moment LiveStatus reports."""
    now = local(2026, 11, 27, 12, 0)
    found = next_opening(WEEKDAYS, rules(WEEKDAYS), now)
    assert found == is_live(WEEKDAYS, rules(WEEKDAYS), now).next_opening
    assert found == local(2026, 11, 30, 8, 0)


def test_never_open_has_no_next_opening() -> None:
    """A department without hours is never live and has no next opening."""
    dep = department(hours={})
    status = is_live(dep, rules(dep), local(2026, 11, 26, 10, 0))
    assert status == LiveStatus(False, None, None, None)


def test_next_opening_is_searched_only_up_to_the_horizon() -> None:
    """An opening 30 days ahead is found with a 40-day horizon, not with 20 days."""
    dep = department(exceptions=(on(date(2026, 12, 26), "10:00-11:00"),))
    now = local(2026, 11, 26, 10, 0)
    assert is_live(dep, rules(dep), now, horizon_days=40).next_opening == local(
        2026, 12, 26, 10, 0
    )
    assert is_live(dep, rules(dep), now, horizon_days=20).next_opening is None


# --- public holidays of the Land ------------------------------------------------


def test_christi_himmelfahrt_closes_the_day() -> None:
    """Christi Himmelfahrt (14.05.2026, a Thursday) is not live; the note names it."""
    status = is_live(THURSDAY, rules(THURSDAY), local(2026, 5, 14, 10, 0))
    assert not status.live
    assert status.note == "Christi Himmelfahrt"


@pytest.mark.parametrize(
    ("land", "day", "live"),
    [
        ("BW", date(2026, 6, 4), False),  # Fronleichnam is a holiday in BW ...
        ("NI", date(2026, 6, 4), True),  # ... not in Niedersachsen
        ("HE", date(2026, 6, 4), False),  # ... and one in Hessen too
        ("NI", date(2025, 10, 31), False),  # Reformationstag in Niedersachsen ...
        ("BW", date(2025, 10, 31), True),  # ... is a working day in BW
        ("BW", date(2026, 1, 6), False),  # Heilige Drei Könige in BW ...
        ("HE", date(2026, 1, 6), True),  # ... not in Hessen
        (None, date(2026, 6, 4), True),  # without a Land: only nationwide holidays
    ],
)
def test_holidays_depend_on_the_land(land: str | None, day: date, live: bool) -> None:
    """A Land holiday closes departments in that Land only."""
    dep = department(hours={"mo-fr": ["08:00-12:00"]})
    moment = datetime(day.year, day.month, day.day, 10, 0, tzinfo=BERLIN)
    assert is_live(dep, rules(dep, subdivision=land), moment).live is live


def test_an_exception_can_open_a_department_on_a_holiday() -> None:
    """A department's own exception for a date wins over the public holiday."""
    dep = department(
        hours={"do": ["09:00-12:00"]},
        exceptions=(on(date(2026, 5, 14), "10:00-11:00"),),
    )
    assert is_live(dep, rules(dep), local(2026, 5, 14, 10, 30)).live
    assert not is_live(dep, rules(dep), local(2026, 5, 14, 9, 30)).live


# --- closures, half-days, exceptions --------------------------------------------


def test_a_closure_day_is_not_live() -> None:
    """The Brückentag closure keeps the Friday closed; next opening is Monday."""
    rule = rules(WEEKDAYS, closures=(closure(date(2026, 5, 15)),))
    status = is_live(WEEKDAYS, rule, local(2026, 5, 15, 9, 0))
    assert not status.live
    assert status.note == "geschlossen"
    assert status.next_opening == local(2026, 5, 18, 8, 0)


def test_a_closure_over_several_days() -> None:
    """A closure from Monday to Wednesday reopens on Thursday."""
    rule = rules(WEEKDAYS, closures=(closure(date(2026, 11, 23), date(2026, 11, 25)),))
    status = is_live(WEEKDAYS, rule, local(2026, 11, 24, 9, 0))
    assert not status.live
    assert status.next_opening == local(2026, 11, 26, 8, 0)


def test_a_half_day_closes_from_noon() -> None:
    """Heiligabend closed from 12:00: 11:59 live until 12:00, 14:30 not live."""
    dep = department(hours={"do": ["09:00-12:00", "14:00-18:00"]})
    rule = rules(dep, closures=(closure(date(2026, 12, 24), start="12:00"),))
    morning = is_live(dep, rule, local(2026, 12, 24, 11, 59))
    assert morning.live
    assert morning.until == local(2026, 12, 24, 12, 0)
    assert morning.next_opening == local(2026, 12, 31, 9, 0)
    assert not is_live(dep, rule, local(2026, 12, 24, 14, 30)).live


def test_a_half_day_that_cuts_a_period_ends_it_early() -> None:
    """Closed from 10:30: the 08:00-12:00 period ends at 10:30 that day."""
    dep = department(hours={"do": ["08:00-12:00"]})
    rule = rules(dep, closures=(closure(date(2026, 11, 26), start="10:30"),))
    assert is_live(dep, rule, local(2026, 11, 26, 9, 0)).until == local(
        2026, 11, 26, 10, 30
    )
    assert periods_on(dep, rule, date(2026, 11, 26)) == periods("08:00-10:30")


def test_a_morning_closure_opens_late() -> None:
    """Closed until 10:00 (staff meeting): 09:00 not live, opening at 10:00."""
    dep = department(hours={"mi": ["08:00-12:00"]})
    rule = rules(dep, closures=(closure(date(2026, 9, 9), end="10:00"),))
    status = is_live(dep, rule, local(2026, 9, 9, 9, 0))
    assert not status.live
    assert status.next_opening == local(2026, 9, 9, 10, 0)


def test_a_closed_exception_closes_only_that_department_day() -> None:
    """An exception without periods closes the department that date only."""
    dep = department(
        hours={"mo-fr": ["08:00-12:00"]},
        exceptions=(on(date(2026, 11, 26), note="Ausflug"),),
    )
    status = is_live(dep, rules(dep), local(2026, 11, 26, 9, 0))
    assert not status.live
    assert status.note == "Ausflug"
    assert status.next_opening == local(2026, 11, 27, 8, 0)


def test_an_exception_replaces_the_weekday_hours() -> None:
    """Other hours on a date replace the weekly ones: 10-11 instead of 8-12."""
    dep = department(
        hours={"mo-fr": ["08:00-12:00"]},
        exceptions=(on(date(2026, 11, 26), "10:00-11:00"),),
    )
    assert not is_live(dep, rules(dep), local(2026, 11, 26, 9, 0)).live
    assert is_live(dep, rules(dep), local(2026, 11, 26, 10, 59)).until == local(
        2026, 11, 26, 11, 0
    )


# --- daylight saving time -------------------------------------------------------
# 2026: clocks go 02:00 CET → 03:00 CEST on 29 March, 03:00 CEST → 02:00 CET on
# 25 October (both Sundays).

SUNDAY_NIGHT = department(hours={"so": ["02:00-03:00"]})


@pytest.mark.parametrize("hour_utc", [0, 1])
def test_spring_night_skipped_hour_is_never_live(hour_utc: int) -> None:
    """02:00-03:00 does not exist on 29 March: not live around the gap."""
    rule = rules(SUNDAY_NIGHT)
    for minute in (0, 30, 59):
        status = is_live(SUNDAY_NIGHT, rule, utc(2026, 3, 29, hour_utc, minute))
        assert not status.live


def test_spring_night_next_opening_is_the_following_sunday() -> None:
    """On the gap night the next 02:00 is a week later, at 00:00 UTC (CEST)."""
    status = is_live(SUNDAY_NIGHT, rules(SUNDAY_NIGHT), utc(2026, 3, 28, 23, 0))
    assert as_utc(status.next_opening) == utc(2026, 4, 5, 0, 0)


def test_spring_night_period_starting_in_the_gap_opens_after_it() -> None:
    """02:30-04:00 on 29 March opens at 03:00 CEST (01:00 UTC), ends 04:00 CEST."""
    dep = department(hours={"so": ["02:30-04:00"]})
    before = is_live(dep, rules(dep), utc(2026, 3, 29, 0, 59))
    assert not before.live
    assert as_utc(before.next_opening) == utc(2026, 3, 29, 1, 0)
    during = is_live(dep, rules(dep), utc(2026, 3, 29, 1, 30))
    assert during.live
    assert as_utc(during.until) == utc(2026, 3, 29, 2, 0)


def test_autumn_night_repeated_hour_is_live_twice() -> None:
    """02:00-03:00 on 25 October covers both 02:xx hours: 00:00-02:00 UTC."""
    rule = rules(SUNDAY_NIGHT)
    first = is_live(SUNDAY_NIGHT, rule, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    second = is_live(SUNDAY_NIGHT, rule, utc(2026, 10, 25, 1, 30))  # 02:30 CET
    assert first.live and second.live
    assert as_utc(first.until) == utc(2026, 10, 25, 2, 0)
    assert not is_live(SUNDAY_NIGHT, rule, utc(2026, 10, 25, 2, 0)).live
    opening = is_live(SUNDAY_NIGHT, rule, utc(2026, 10, 24, 23, 0)).next_opening
    assert as_utc(opening) == utc(2026, 10, 25, 0, 0)


def test_autumn_night_period_ending_in_the_repeated_hour_ends_at_its_second() -> None:
    """01:00-02:30 on 25 October runs until 02:30 CET (01:30 UTC), not 02:30 CEST."""
    dep = department(hours={"so": ["01:00-02:30"]})
    status = is_live(dep, rules(dep), utc(2026, 10, 25, 1, 0))  # 02:00 CET
    assert status.live
    assert as_utc(status.until) == utc(2026, 10, 25, 1, 30)


def test_office_hours_keep_wall_clock_across_the_spring_change() -> None:
    """From Friday (CET) the Monday 08:00 after the change is 06:00 UTC (CEST)."""
    status = is_live(WEEKDAYS, rules(WEEKDAYS), local(2026, 3, 27, 13, 0))
    assert as_utc(status.next_opening) == utc(2026, 3, 30, 6, 0)
    monday = is_live(WEEKDAYS, rules(WEEKDAYS), utc(2026, 3, 30, 9, 59))
    assert monday.live
    assert as_utc(monday.until) == utc(2026, 3, 30, 10, 0)


def test_office_hours_keep_wall_clock_across_the_autumn_change() -> None:
    """From Friday (CEST) the Monday 08:00 after the change is 07:00 UTC (CET)."""
    status = is_live(WEEKDAYS, rules(WEEKDAYS), local(2026, 10, 23, 13, 0))
    assert as_utc(status.next_opening) == utc(2026, 10, 26, 7, 0)
    assert not is_live(WEEKDAYS, rules(WEEKDAYS), utc(2026, 10, 26, 6, 30)).live


def test_a_long_period_over_the_autumn_change_lasts_an_hour_longer() -> None:
    """01:00-04:00 on the autumn night is live for four real hours."""
    dep = department(hours={"so": ["01:00-04:00"]})
    status = is_live(dep, rules(dep), utc(2026, 10, 24, 23, 0))  # 01:00 CEST
    assert status.live
    assert status.until is not None
    assert status.until - utc(2026, 10, 24, 23, 0) == timedelta(hours=4)


def test_other_time_zones_follow_their_own_wall_clock() -> None:
    """With timezone Europe/London, 09:00-12:00 is 09:00 London time."""
    dep = THURSDAY
    rule = RoutingRules(departments=(dep,), timezone="Europe/London")
    assert is_live(dep, rule, utc(2026, 11, 26, 9, 0)).live
    assert not is_live(dep, rule, utc(2026, 11, 26, 12, 0)).live
