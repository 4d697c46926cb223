"""The waiting line of a department and the load of its staff, as pure functions.

The edge (:mod:`bots.routing.dispatcher`) reads open cases from the database and
presence from Synapse, and asks these functions who is busy, where each waiting
citizen stands and how long they will probably wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.departments.model import Department

from .strategy import estimate_wait, serving_slots

__all__ = [
    "OpenCase",
    "QueuePlace",
    "is_inactive",
    "last_pointers",
    "open_cases_per_staff",
    "queue_places",
]


@dataclass(frozen=True)
class OpenCase:
    """What routing needs to know about an open case. ``invited``: the staff the
    strategy invited; until someone claims the case it counts for each of them."""

    case_id: str
    department: str
    state: str
    assignee: str | None = None
    invited: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueuePlace:
    position: int
    estimated_wait_minutes: int

    def as_json(self) -> dict[str, int]:
        return {
            "position": self.position,
            "estimated_wait_minutes": self.estimated_wait_minutes,
        }


#: What a running video call weighs: more than any max_cases_per_staff.
IN_CALL_LOAD = 10**9


def open_cases_per_staff(cases: Iterable[OpenCase]) -> dict[str, int]:
    """Open live cases per staff Matrix ID: a claimed case counts for whoever
    claimed it, an unclaimed one for everyone invited to it. Whoever is in a
    video appointment's call (``in_call``) counts as full: no chat is routed
    to them until the call has ended."""
    counts: dict[str, int] = {}
    for case in cases:
        if case.state not in ("live", "in_call"):
            continue
        weight = IN_CALL_LOAD if case.state == "in_call" else 1
        for mxid in (case.assignee,) if case.assignee else case.invited:
            counts[mxid] = counts.get(mxid, 0) + weight
    return counts


def queue_places(
    department: Department,
    waiting: Sequence[str],
    presence: Mapping[str, str] | None,
) -> dict[str, QueuePlace]:
    """Position (1 = next) and estimated wait of each case id in ``waiting``, which
    is in the order the cases were opened."""
    average = timedelta(minutes=department.average_case_minutes)
    slots = serving_slots(department, presence)
    places = {}
    for position, case_id in enumerate(waiting, 1):
        wait = estimate_wait(position, average, slots)
        places[case_id] = QueuePlace(position, int(wait.total_seconds() // 60))
    return places


def last_pointers(routed: Iterable[tuple[str, str, tuple[str, ...]]]) -> dict[str, str]:
    """Round-robin pointers from routing history: ``routed`` holds (department,
    routed_at as ISO text, invited) of past cases; for each department the person
    picked alone most recently is where the rotation continues."""
    latest: dict[str, tuple[str, str]] = {}
    for department, routed_at, invited in routed:
        if len(invited) != 1:
            continue  # broadcast: nobody was picked in turn
        if department not in latest or routed_at >= latest[department][0]:
            latest[department] = (routed_at, invited[0])
    return {department: mxid for department, (_, mxid) in latest.items()}


def is_inactive(last_activity: datetime, now: datetime, minutes: float) -> bool:
    """True when nothing happened for ``minutes`` (0 = never close)."""
    return minutes > 0 and now - last_activity >= timedelta(minutes=minutes)
