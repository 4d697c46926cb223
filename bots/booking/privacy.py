"""The booking bot's part in data protection (bridge.privacy): an appointment
holds the booker's name, e-mail and phone. Its rows go with the case (ON DELETE
CASCADE, holds too); the part finds a person's cases by e-mail address and adds
the appointments to an export (Art. 15)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from bridge.booking import Bookings
from bridge.clock import as_utc
from bridge.db.models import Appointment, Case
from bridge.privacy.parts import Export, Part
from bridge.synapse_admin import SynapseAdmin


class BookingPrivacy:
    def __init__(self, bookings: Bookings) -> None:
        self.bookings = bookings

    def part(self) -> Part:
        return Part(
            "booking",
            erase=self.erase,
            export=self.export,
            cases_of_email=self.cases_of_email,
        )

    async def _of_case(self, case_id: str) -> list[Appointment]:
        async with self.bookings.session() as s:
            rows = await s.scalars(
                select(Appointment)
                .where(Appointment.case_id == case_id)
                .order_by(Appointment.id)
            )
            return list(rows)

    async def cases_of_email(self, address: str) -> Sequence[str]:
        async with self.bookings.session() as s:
            rows = await s.scalars(
                select(Appointment.case_id).where(
                    func.lower(Appointment.email) == address.strip().lower(),
                    Appointment.case_id.is_not(None),
                )
            )
            return [r for r in rows if r]

    async def erase(self, case: Case, action: str) -> dict[str, int]:
        # The rows go with the case (ON DELETE CASCADE); counted for the audit.
        return {"appointments": len(await self._of_case(case.case_id))}

    async def export(
        self, case: Case, bundle: Export, admin: SynapseAdmin | None
    ) -> None:
        found = await self._of_case(case.case_id)
        if not found:
            return
        bundle.data["appointments"] = [
            {
                "department": a.department,
                "services": list(a.services),
                "start": as_utc(a.start).isoformat(),
                "end": as_utc(a.end).isoformat(),
                "state": a.state,
                "walk_in": a.walk_in,
                "name": a.name,
                "email": a.email,
                "phone": a.phone,
                "language": a.language,
                "booked_at": as_utc(a.created_at).isoformat(),
                **{
                    key: as_utc(value).isoformat()
                    for key in ("arrived_at", "called_at", "ended_at", "no_show_at")
                    if (value := getattr(a, key)) is not None
                },
            }
            for a in found
        ]
