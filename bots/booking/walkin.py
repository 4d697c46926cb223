"""Walk-ins ("unmittelbar wahrnehmen"): during video hours a citizen enters the
waiting room without a booking when someone is free now or soon. The walk-in is
booked on the spot — the earliest 5-minute step within
``booking.walk_in_within_minutes`` at which one of the department's video staff
is free for the services — so it holds that person's time like any booking
(nobody can book it away) and waits in that person's waiting room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.booking import Bookings
from bridge.clock import routing_now
from bridge.config import Config
from bridge.departments.video import Slot, VideoOffice, slots


@dataclass(frozen=True)
class WalkInChance:
    #: The earliest start someone is free at, within the walk-in window.
    slot: Slot | None
    #: Otherwise: the next bookable slot (for the widget's offer to book).
    next_slot: Slot | None

    def as_json(self, zone: object, now: datetime) -> dict[str, Any]:
        def iso(slot: Slot | None) -> str | None:
            return slot.start.astimezone(zone).isoformat() if slot else None  # type: ignore[arg-type]

        wait = None
        if self.slot is not None:
            wait = max(0, int((self.slot.start - now).total_seconds() // 60))
        return {
            "available": self.slot is not None,
            "expected_start": iso(self.slot),
            "wait_minutes": wait,
            "next_slot": iso(self.next_slot),
        }


async def walk_in_chance(
    config: Config,
    bookings: Bookings,
    office: VideoOffice,
    minutes: int,
    within_minutes: int,
) -> WalkInChance:
    now = routing_now()
    rules = config.routing
    today = now.astimezone(rules.zone).date()
    window = (now - timedelta(days=1), now + timedelta(days=2))
    busy = await bookings.busy(office.staff, *window)
    found = None
    if within_minutes > 0:
        steps = slots(office, rules, minutes, today, 1, now, busy, walk_in=True)
        latest = now + timedelta(minutes=within_minutes)
        found = next((s for s in steps if s.start <= latest), None)
    upcoming = None
    if found is None:
        ahead = slots(office, rules, minutes, today, 7, now, busy)
        upcoming = ahead[0] if ahead else None
    return WalkInChance(found, upcoming)
