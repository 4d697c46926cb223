"""The virtual citizen office of a department (``video:`` in departments.yaml):
the services citizens can book as a video appointment, who offers them, and
when — weekly video hours with date exceptions, closed on the Land's holidays
and the administration's closures exactly as the chat hours are (the same
:func:`bridge.departments.office_hours.periods_on`).

Slots start every ``slot_minutes`` within the video hours; an appointment of
one or more services lasts their durations together and must end within the
hours; ``buffer_minutes`` lie between two appointments of one person; slots
are offered from ``cutoff_minutes`` after now up to ``horizon_days`` ahead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from bridge.yamlconf import Item, Section, check_matrix_id

from .model import DateException, Department, Period, Staff
from .office_hours import _exists, _instant, periods_on
from .schedule import child

if TYPE_CHECKING:
    from .model import RoutingRules

_SERVICE_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
#: Appointments are planned in steps of this many minutes.
GRAIN = 5


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    duration_minutes: int
    #: What to have at hand (the ID card, a form), shown before booking.
    prepare: str | None = None


@dataclass(frozen=True)
class VideoOffice:
    #: The video hours, as a department's hours are kept (week, exceptions).
    hours: Department
    services: tuple[Service, ...]
    #: Matrix IDs of the staff who take video appointments.
    staff: tuple[str, ...]
    slot_minutes: int = 15
    buffer_minutes: int = 5
    horizon_days: int = 28
    cutoff_minutes: int = 60

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    #: How many of the office's staff are free for all of it.
    staff_count: int


def read_video(
    dep: Section,
    item: Item,
    staff: tuple[Staff, ...],
    read_hours: Callable[[Section, Item], tuple[tuple[Period, ...], ...]],
    read_exceptions: Callable[[Section], tuple[DateException, ...]],
) -> VideoOffice | None:
    """The department's ``video:`` section, or None without one. ``read_hours``
    and ``read_exceptions`` are the department reader's own (the same syntax)."""
    if not dep.has("video"):
        return None
    sec = dep.section("video")
    node = child(item.node, "video")
    sub = Item(dep, f"{item.path}.video", node) if node is not None else item
    week = read_hours(sec, sub)
    exceptions = read_exceptions(sec)
    services = _read_services(sec)
    known = tuple(s.mxid for s in staff)
    chosen = tuple(sec.get("staff", list, list(known)))
    for mxid in chosen:
        problem = check_matrix_id(str(mxid))
        if problem is None and mxid not in known:
            problem = f"{mxid} is not among the department's staff"
        if problem:
            sec.error(problem, "staff")
    office = VideoOffice(
        hours=Department(
            id="video", name="video", staff=staff, week=week, exceptions=exceptions
        ),
        services=services,
        staff=chosen,
        slot_minutes=sec.get("slot_minutes", int, 15, check=_grain),
        buffer_minutes=sec.get("buffer_minutes", int, 5, check=_grain_or_zero),
        horizon_days=sec.get("horizon_days", int, 28, check=_days),
        cutoff_minutes=sec.get("cutoff_minutes", int, 60, check=_grain_or_zero),
    )
    sec.finish()
    if not services:
        sec.error("name at least one service citizens can book", "services")
    return office


def _read_services(sec: Section) -> tuple[Service, ...]:
    services: list[Service] = []
    for entry in sec.items("services", required=True):
        if not entry.is_mapping():
            entry.error("each service must be a mapping with id, name and duration")
            continue
        svc = entry.section()
        service = Service(
            id=svc.get("id", str, check=_service_id) or "",
            name=svc.get("name", str) or "",
            duration_minutes=svc.get("duration_minutes", int, check=_grain) or GRAIN,
            prepare=svc.get("prepare", str, None),
        )
        svc.finish()
        if any(s.id == service.id for s in services):
            svc.error(f"service id '{service.id}' is used twice", "id")
        services.append(service)
    return tuple(services)


def _service_id(value: str) -> str | None:
    if _SERVICE_ID.match(value):
        return None
    return f"'{value}' is not a valid id: lower-case letters, digits, - and _"


def _grain(value: int) -> str | None:
    if value > 0 and value % GRAIN == 0:
        return None
    return f"must be a positive multiple of {GRAIN} minutes"


def _grain_or_zero(value: int) -> str | None:
    return None if value == 0 else _grain(value)


def _days(value: int) -> str | None:
    return None if 1 <= value <= 366 else "must be 1 to 366 days"


def slots(
    office: VideoOffice,
    rules: RoutingRules,
    minutes: int,
    first: date,
    days: int,
    now: datetime,
    busy: dict[str, list[tuple[datetime, datetime]]] | None = None,
    *,
    walk_in: bool = False,
) -> list[Slot]:
    """Free starts for an appointment of ``minutes`` on ``days`` days from
    ``first`` (local dates), within the horizon and after the cut-off; each with
    how many staff are free for it and the buffer around it (``busy``: their
    booked times). ``walk_in``: every 5-minute step from the current one on,
    no cut-off (someone in the waiting room now)."""
    zone = rules.zone
    today = now.astimezone(zone).date()
    if walk_in:
        earliest = now - timedelta(minutes=GRAIN) + timedelta(microseconds=1)
    else:
        earliest = now + timedelta(minutes=office.cutoff_minutes)
    step = GRAIN if walk_in else office.slot_minutes
    last_day = min(
        first + timedelta(days=days - 1), today + timedelta(days=office.horizon_days)
    )
    buffer = timedelta(minutes=office.buffer_minutes)
    found: list[Slot] = []
    day = max(first, today)
    while day <= last_day:
        for period in periods_on(office.hours, rules, day):
            start = period.start
            while start + minutes <= period.end:
                wall = datetime.combine(day, time()) + timedelta(minutes=start)
                begin = _instant(day, start, zone, latest=False)
                end = begin + timedelta(minutes=minutes)
                # A start the clock skips (spring forward) is no start.
                if _exists(wall, zone) and begin >= earliest:
                    free = sum(
                        1
                        for mxid in office.staff
                        if not any(
                            b_start < end + buffer and begin - buffer < b_end
                            for b_start, b_end in (busy or {}).get(mxid, ())
                        )
                    )
                    if free:
                        found.append(Slot(begin, end, free))
                start += step
        day += timedelta(days=1)
    return found


def with_services(office: VideoOffice, ids: list[str]) -> tuple[int, list[str]]:
    """Total minutes of the services ``ids`` and the ids it does not offer."""
    unknown = [i for i in ids if office.service(i) is None]
    total = sum(s.duration_minutes for i in ids if (s := office.service(i)))
    return total, unknown
