"""The booking form as ``POST /api/v1/appointments`` and ``POST
/api/v1/walk-ins`` receive it: checked field by field, every problem explained
in the citizen's language (``form.*`` in the citizen catalogue). Pure: the
JSON body and the configuration in, a :class:`BookingForm` out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.api.fields import (
    MAX_NAME,
    contact_fields,
    form_head,
    string_field,
    text,
)
from bridge.config import Config
from bridge.departments.model import Department
from bridge.departments.video import Service, VideoOffice
from bridge.errors import InvalidField

#: More services than this in one appointment is no appointment but a day.
MAX_SERVICES = 5


@dataclass(frozen=True)
class BookingForm:
    client_id: str
    department: Department
    office: VideoOffice
    services: tuple[Service, ...]
    #: None for a walk-in (the next free time is taken).
    start: datetime | None
    name: str
    email: str | None
    phone: str | None
    language: str

    @property
    def minutes(self) -> int:
        return sum(s.duration_minutes for s in self.services)


def parse_booking(
    data: dict[str, Any], config: Config, *, walk_in: bool = False
) -> BookingForm:
    """Check a booking (``walk_in``: without a start); the first problem is
    raised as a 400 naming its field, in the citizen's language."""
    language, client_id = form_head(data)
    department, office = _office(data, config, language)
    services = _services(data, office, language)
    start = None if walk_in else _start(data, language)
    name = string_field(data, "name", language, limit=MAX_NAME, required=True)
    # A walk-in is there now: an address is optional.
    email, phone = contact_fields(data, language, email_required=not walk_in)
    assert name is not None
    return BookingForm(
        client_id=client_id,
        department=department,
        office=office,
        services=services,
        start=start,
        name=name,
        email=email,
        phone=phone,
        language=language,
    )


def _office(
    data: dict[str, Any], config: Config, language: str
) -> tuple[Department, VideoOffice]:
    department_id = string_field(data, "department", language, limit=32, required=True)
    department = config.department(department_id or "")
    offering = [d for d in config.departments if d.video is not None]
    known = ", ".join(d.id for d in offering)
    if department is None:
        raise InvalidField(
            "department", text("department", language, value=department_id, known=known)
        )
    if department.video is None:
        raise InvalidField(
            "department",
            text("no_video", language, department=department.name, known=known),
        )
    return department, department.video


def _services(
    data: dict[str, Any], office: VideoOffice, language: str
) -> tuple[Service, ...]:
    ids = data.get("services")
    if isinstance(ids, str):
        ids = [i for i in ids.split(",") if i]
    known = ", ".join(s.id for s in office.services)
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > MAX_SERVICES
        or not all(isinstance(i, str) for i in ids)
    ):
        raise InvalidField(
            "services",
            text("services_missing", language, known=known, most=MAX_SERVICES),
        )
    unknown = [i for i in ids if office.service(i) is None]
    if unknown:
        raise InvalidField(
            "services",
            text("services_unknown", language, value=", ".join(unknown), known=known),
        )
    # The same service twice is one service.
    return tuple(s for i in dict.fromkeys(ids) if (s := office.service(i)))


def _start(data: dict[str, Any], language: str) -> datetime:
    raw = data.get("start")
    try:
        start = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        start = None
    # A time with its offset, in this century (year 9999 would overflow).
    if start is None or start.tzinfo is None or not 2000 <= start.year <= 2100:
        raise InvalidField("start", text("start", language))
    return start
