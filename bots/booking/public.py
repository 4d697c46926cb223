"""The virtual citizen office, public part: which services a town offers as a
video appointment, and when there is a free start (issue "Virtuelles
Bürgerbüro", its API contract). Booking builds on this.

- ``GET /api/v1/services``: every department's bookable services with their
  duration and what to prepare.
- ``GET /api/v1/appointments/slots?department=&services=a,b&from=YYYY-MM-DD&days=n``:
  free starts for an appointment of those services (durations add up), in the
  town's time with offset, each with how many staff are free for it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from aiohttp import web

from bridge.api.events import int_param
from bridge.booking import Bookings
from bridge.clock import routing_now
from bridge.config import Config
from bridge.departments.video import VideoOffice, slots, with_services
from bridge.errors import InvalidField

MAX_DAYS = 31


class PublicOffer:
    def __init__(self, config: Config, bookings: Bookings) -> None:
        self.config = config
        self.bookings = bookings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/services", self.services),
            web.get("/api/v1/appointments/slots", self.slots),
        ]

    async def services(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "services": [
                    {
                        "id": service.id,
                        "department": department.id,
                        "name": service.name,
                        "duration_minutes": service.duration_minutes,
                        "prepare": service.prepare,
                    }
                    for department in self.config.departments
                    if department.video is not None
                    for service in department.video.services
                ]
            }
        )

    async def slots(self, request: web.Request) -> web.Response:
        office = self.office(request.query.get("department", ""))
        ids = [s for s in request.query.get("services", "").split(",") if s]
        if not ids:
            raise InvalidField(
                "services",
                "Name the services to book, e.g. ?services=personalausweis "
                "(ids from GET /api/v1/services, several separated by commas).",
            )
        minutes, unknown = with_services(office, ids)
        if unknown:
            raise InvalidField(
                "services",
                f"This department offers no service {', '.join(unknown)}; "
                "GET /api/v1/services lists what it offers.",
            )
        now = routing_now()
        rules = self.config.routing
        today = now.astimezone(rules.zone).date()
        first = _date_param(request, today)
        if not today - timedelta(days=MAX_DAYS) <= first <= today + timedelta(days=400):
            raise InvalidField(
                "from", "Ask for days from today on, at most 400 days ahead."
            )
        days = int_param(request, "days", 7)
        if not 1 <= days <= MAX_DAYS:
            raise InvalidField("days", f"Ask for 1 to {MAX_DAYS} days at a time.")
        # Booked times of the office's staff (a day more on each side: the
        # buffer and the zone's offset reach past the local days).
        window_start = datetime.combine(first, time(), rules.zone) - timedelta(days=1)
        busy = await self.bookings.busy(
            office.staff, window_start, window_start + timedelta(days=days + 2)
        )
        found = slots(office, rules, minutes, first, days, now, busy)
        return web.json_response(
            {
                "slots": [
                    {
                        "start": slot.start.astimezone(rules.zone).isoformat(),
                        "end": slot.end.astimezone(rules.zone).isoformat(),
                        "staff_count": slot.staff_count,
                    }
                    for slot in found
                ]
            }
        )

    def office(self, department_id: str) -> VideoOffice:
        department = self.config.department(department_id)
        if department is None:
            raise InvalidField(
                "department",
                "Name a department, e.g. ?department=buergerbuero "
                "(ids from GET /api/v1/services).",
            )
        if department.video is None:
            raise InvalidField(
                "department",
                f"{department.name} offers no video appointments; "
                "GET /api/v1/services lists the departments that do.",
            )
        return department.video


def _date_param(request: web.Request, default: date) -> date:
    raw = request.query.get("from")
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidField(
            "from", "The parameter 'from' must be a date like 2026-12-07."
        ) from None
