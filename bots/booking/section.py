"""The ``booking:`` section of buergerchat.yaml: the rules of the virtual citizen
office that are the same for every department (each department's services and
video hours are under ``video:`` in departments.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.yamlconf import Section

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class BookingSettings:
    #: Reminder mails this many minutes before the start (past ones are skipped).
    reminders_minutes: tuple[int, ...] = (1440, 60)
    #: The join link opens the waiting room this many minutes before the start.
    waiting_room_opens_minutes: int = 10
    #: Not in the waiting room this many minutes after the start: a no-show.
    no_show_minutes: int = 15
    #: Walk-ins are let in when someone is free within this many minutes
    #: (0: no walk-ins).
    walk_in_within_minutes: int = 30
    #: Staff get their day's appointments as a notice at this local time (None:
    #: no notice).
    morning_notice: time | None = time(7, 30)
    #: Double opt-in: a booking holds its time, but counts (confirmation with
    #: .ics, reminders) only once the citizen confirmed it by the link in a
    #: first mail, within ``confirm_within_minutes``; else the time is free again.
    double_opt_in: bool = False
    confirm_within_minutes: int = 60


def read_config(section: Section, config: Config) -> BookingSettings:
    reminders = section.get("reminders_minutes", list, [1440, 60])
    clean: list[int] = []
    for value in reminders or []:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            section.error(
                f"{value!r} is no number of minutes; write e.g. [1440, 60]",
                "reminders_minutes",
            )
            continue
        clean.append(value)
    morning = section.get("morning_notice", str, "07:30", check=_clock)
    settings = BookingSettings(
        reminders_minutes=tuple(sorted(set(clean), reverse=True)),
        waiting_room_opens_minutes=section.get(
            "waiting_room_opens_minutes", int, 10, check=_minutes
        ),
        no_show_minutes=section.get("no_show_minutes", int, 15, check=_minutes),
        walk_in_within_minutes=section.get(
            "walk_in_within_minutes", int, 30, check=_minutes_or_zero
        ),
        morning_notice=_time(morning) if morning else None,
        double_opt_in=section.get("double_opt_in", bool, False),
        confirm_within_minutes=section.get(
            "confirm_within_minutes", int, 60, check=_minutes
        ),
    )
    section.finish()
    return settings


def _clock(value: str) -> str | None:
    return None if _CLOCK.match(value) else "write a time like 07:30"


def _time(value: str) -> time | None:
    match = _CLOCK.match(value)
    return time(int(match[1]), int(match[2])) if match else None


def _minutes(value: int) -> str | None:
    return None if 1 <= value <= 1440 else "must be 1 to 1440 minutes"


def _minutes_or_zero(value: int) -> str | None:
    return None if value == 0 else _minutes(value)
