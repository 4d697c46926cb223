"""The virtual citizen office's citizen API (issue "Virtuelles Bürgerbüro", its
API contract):

- ``POST /api/v1/appointments``: book → 201 with the case and its chat token;
  409 ``BC_SLOT_TAKEN`` when the time is gone; the same ``client_id`` again
  answers with the same appointment.
- ``GET /api/v1/cases/{case_id}/appointment``: the case's appointment, for the
  widget (when, what, whether the waiting room is open, the place in it).
- ``DELETE /api/v1/appointments/{appointment_id}`` with the case's token:
  cancelled, the time free again, a mail sent.
- ``POST /api/v1/cases/{case_id}/waiting-room``: in the waiting room → place and
  expected start; too early → 425 ``BC_TOO_EARLY`` with ``opens_at``.
- ``GET /api/v1/walk-ins?department=&services=`` and ``POST /api/v1/walk-ins``:
  without a booking, when someone is free now or soon.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge.api.citizen import bearer, read_json
from bridge.clock import as_utc, routing_now
from bridge.db.models import Appointment, Case
from bridge.departments.video import with_services
from bridge.errors import InvalidField, NotFound
from bridge.tokens import RESUME

from .errors import NoWalkIn
from .form import BookingForm, parse_booking
from .office import Booked, Office
from .public import PublicOffer
from .visits import Visits
from .walkin import walk_in_chance


class BookingAPI:
    def __init__(self, office: Office, visits: Visits) -> None:
        self.office = office
        self.visits = visits
        self.ctx = office.ctx
        self.public = PublicOffer(self.ctx.config, office.bookings)

    def routes(self) -> list[web.RouteDef]:
        return [
            *self.public.routes(),
            web.post("/api/v1/appointments", self.book),
            web.delete("/api/v1/appointments/{appointment_id}", self.cancel),
            web.post("/api/v1/appointments/{appointment_id}/confirm", self.confirm),
            web.get("/api/v1/cases/{case_id}/appointment", self.show),
            web.post("/api/v1/cases/{case_id}/waiting-room", self.waiting_room),
            web.get("/api/v1/walk-ins", self.walk_in_offer),
            web.post("/api/v1/walk-ins", self.walk_in),
        ]

    @property
    def zone(self) -> Any:
        return self.ctx.config.routing.zone

    # --- booking and cancelling -----------------------------------------------------

    async def book(self, request: web.Request) -> web.Response:
        form = parse_booking(await read_json(request), self.ctx.config)
        client_key = await self._admit(request, form)
        booked = await self.office.book(form, client_key)
        return web.json_response(self._booked(booked), status=201)

    async def _admit(
        self, request: web.Request, form: BookingForm, *, walk_in: bool = False
    ) -> str | None:
        """Limits for anonymous bookings (a repeated request counts too), and a
        mailbox gets only so many confirmations a day (counted once booked)."""
        limits = self.ctx.limits
        key = await limits.admit(
            request,
            ("bookings_per_address", "address"),
            ("bookings_total", "all"),
            proof="booking",
        )
        if form.email and not walk_in:  # a walk-in gets no confirmation
            await limits.check("confirmations_per_recipient", form.email.lower())
        return key

    def _booked(self, booked: Booked) -> dict[str, Any]:
        a, case = booked.appointment, booked.case
        return {
            "appointment_id": a.appointment_id,
            "case_id": case.case_id,
            "reference": case.reference,
            "token": booked.token,
            "state": _state(a),
            "start": as_utc(a.start).astimezone(self.zone).isoformat(),
            "end": as_utc(a.end).astimezone(self.zone).isoformat(),
        }

    async def _own(
        self, request: web.Request, case_id: str
    ) -> tuple[Appointment, Case]:
        case = await self.ctx.cases.authorize(case_id, bearer(request))
        appointment = await self.office.bookings.of_case(case.case_id)
        if appointment is None:
            raise NotFound("This case has no appointment.")
        return appointment, case

    async def cancel(self, request: web.Request) -> web.Response:
        appointment, case = await self._by_id(request)
        await self.office.cancel(appointment, case, by="citizen")
        return web.json_response(
            {"appointment_id": appointment.appointment_id, "state": "cancelled"}
        )

    async def confirm(self, request: web.Request) -> web.Response:
        """Double opt-in: only the personal link's token from the first mail
        confirms (the booking's own chat token does not: it proves no one read
        that mail)."""
        appointment = await self.office.bookings.get(
            request.match_info["appointment_id"]
        )
        if appointment is None or appointment.case_id is None:
            raise NotFound("There is no such appointment.")
        await self.ctx.cases.tokens.check(bearer(request), appointment.case_id, RESUME)
        await self.office.confirm(appointment)
        fresh = await self.office.bookings.get(appointment.appointment_id)
        assert fresh is not None
        return web.json_response(
            {"appointment_id": fresh.appointment_id, "state": _state(fresh)}
        )

    async def _by_id(self, request: web.Request) -> tuple[Appointment, Case]:
        """The appointment of the path, if the token is its case's."""
        appointment = await self.office.bookings.get(
            request.match_info["appointment_id"]
        )
        if appointment is None or appointment.case_id is None:
            raise NotFound("There is no such appointment.")
        case = await self.ctx.cases.authorize(appointment.case_id, bearer(request))
        return appointment, case

    async def show(self, request: web.Request) -> web.Response:
        appointment, case = await self._own(request, request.match_info["case_id"])
        return web.json_response(await self._details(appointment, case))

    async def _details(self, a: Appointment, case: Case) -> dict[str, Any]:
        notices = self.office.notices
        department = self.ctx.config.department(a.department)
        office = department.video if department else None
        services = [office.service(i) if office else None for i in a.services]
        place = None
        if a.arrived_at is not None and a.called_at is None and a.state == "booked":
            found = (await self.visits.places(a.staff_mxid)).get(a.appointment_id)
            place = found.as_json(self.zone) if found else None
        return {
            "appointment_id": a.appointment_id,
            "case_id": case.case_id,
            "reference": case.reference,
            "state": _state(a) if a.state != "booked" else case.state,
            "department": {"id": a.department, "name": notices.department_name(a)},
            "services": [
                {"id": s.id, "name": s.name, "prepare": s.prepare}
                for s in services
                if s is not None
            ],
            "start": as_utc(a.start).astimezone(self.zone).isoformat(),
            "end": as_utc(a.end).astimezone(self.zone).isoformat(),
            "walk_in": a.walk_in,
            "waiting_room_opens_at": self.visits.opens_at(a)
            .astimezone(self.zone)
            .isoformat(),
            "waiting": place,
            "helpline": notices.helpline,
        }

    # --- the waiting room ---------------------------------------------------------

    async def waiting_room(self, request: web.Request) -> web.Response:
        appointment, case = await self._own(request, request.match_info["case_id"])
        place = await self.visits.arrive(appointment, case)
        return web.json_response(
            {"state": "waiting", "case_id": case.case_id, **place.as_json(self.zone)}
        )

    # --- walk-ins -----------------------------------------------------------------

    async def walk_in_offer(self, request: web.Request) -> web.Response:
        office = self.public.office(request.query.get("department", ""))
        ids = [s for s in request.query.get("services", "").split(",") if s]
        minutes, unknown = with_services(office, ids)
        if not ids or unknown:
            raise InvalidField(
                "services",
                "Name the services, e.g. ?services=meldebescheinigung (ids from "
                "GET /api/v1/services).",
            )
        chance = await walk_in_chance(
            self.ctx.config,
            self.office.bookings,
            office,
            minutes,
            self.office.settings.walk_in_within_minutes,
        )
        return web.json_response(chance.as_json(self.zone, routing_now()))

    async def walk_in(self, request: web.Request) -> web.Response:
        form = parse_booking(await read_json(request), self.ctx.config, walk_in=True)
        client_key = await self._admit(request, form, walk_in=True)
        known = await self.office.bookings.by_client_id(form.client_id)
        if known is None:
            chance = await walk_in_chance(
                self.ctx.config,
                self.office.bookings,
                form.office,
                form.minutes,
                self.office.settings.walk_in_within_minutes,
            )
            if chance.slot is None:
                raise NoWalkIn(**chance.as_json(self.zone, routing_now()))
            form = _at(form, chance.slot.start)
        booked = await self.office.book(form, client_key, walk_in=True)
        place = await self.visits.arrive(booked.appointment, booked.case)
        body = self._booked(booked)
        body.update(state="waiting", waiting=place.as_json(self.zone))
        return web.json_response(body, status=201)


def _state(appointment: Appointment) -> str:
    """What the API calls an appointment's state."""
    if appointment.state == "pending":
        return "pending_confirmation"
    if appointment.state == "booked" and appointment.arrived_at is not None:
        return "waiting"
    return appointment.state


def _at(form: BookingForm, start: Any) -> BookingForm:
    from dataclasses import replace

    return replace(form, start=start)
