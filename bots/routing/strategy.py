"""Who gets a new case: the routing decision as a pure function.

The caller passes what it knows right now (presence per staff member, open cases per
staff member, the round-robin pointers it persisted) and gets back plain data: the
decision and the pointers to store for next time.

- **live**: a department is live and someone online has room for another case →
  invite who the department's strategy picks.
- **queued**: live, someone is online, but everyone online is at
  ``max_cases_per_staff`` → the citizen waits in that department's queue.
- **offline**: closed, or live with nobody online → the offline form.

When the requested department cannot take the case live, its ``fallback`` chain is
tried in order before it is queued or sent offline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bridge.departments.model import Department, RoutingRules
from bridge.departments.office_hours import LiveStatus, is_live

__all__ = [
    "DecisionKind",
    "Presence",
    "RoutingDecision",
    "available_staff",
    "choose_staff",
    "estimate_wait",
    "fallback_chain",
    "free_staff",
    "route",
    "serving_slots",
]

Presence = Literal["online", "unavailable", "offline"]
DecisionKind = Literal["live", "queued", "offline"]


@dataclass(frozen=True)
class RoutingDecision:
    """``department``: who takes the case (a fallback, when ``via_fallback``).
    ``reason``: ``free_staff`` (live), ``all_busy`` (queued), ``closed`` or
    ``nobody_online`` (offline). ``pointers``: round-robin state to persist.
    ``status``: the live status of ``department``."""

    kind: DecisionKind
    department: str
    reason: str
    status: LiveStatus
    invite: tuple[str, ...] = ()
    via_fallback: bool = False
    pointers: dict[str, str] = field(default_factory=dict)


def available_staff(
    department: Department, presence: Mapping[str, str] | None
) -> tuple[str, ...]:
    """Staff who are online. ``presence=None`` means presence is not tracked (Synapse
    with presence disabled): everyone counts as online. With a mapping, staff
    missing from it count as offline; only ``online`` is available."""
    mxids = tuple(dict.fromkeys(s.mxid for s in department.staff))
    if presence is None:
        return mxids
    return tuple(m for m in mxids if presence.get(m) == "online")


def free_staff(
    department: Department,
    presence: Mapping[str, str] | None,
    open_cases: Mapping[str, int],
) -> tuple[str, ...]:
    """Online staff with fewer than ``max_cases_per_staff`` open cases."""
    limit = department.max_cases_per_staff
    return tuple(
        m for m in available_staff(department, presence) if open_cases.get(m, 0) < limit
    )


def choose_staff(
    department: Department,
    presence: Mapping[str, str] | None,
    open_cases: Mapping[str, int],
    last_assigned: str | None = None,
) -> tuple[tuple[str, ...], str | None]:
    """Whom to invite by the department's strategy, and the new round-robin pointer.

    ``broadcast`` invites every free person; ``round_robin`` the next free person
    after ``last_assigned`` in staff order; ``least_busy`` the free person with the
    fewest open cases, ties broken in round-robin order so they take turns. An
    empty tuple means nobody is free.
    """
    free = free_staff(department, presence, open_cases)
    if not free:
        return (), last_assigned
    if department.strategy == "broadcast":
        return free, last_assigned
    candidates = [m for m in _rotation(department, last_assigned) if m in free]
    if department.strategy == "least_busy":
        pick = min(candidates, key=lambda m: open_cases.get(m, 0))
    else:
        pick = candidates[0]
    return (pick,), pick


def fallback_chain(
    rules: RoutingRules, department: Department
) -> tuple[Department, ...]:
    """``department`` and its fallbacks in order; stops at a repeat or unknown id."""
    chain = [department]
    while chain[-1].fallback is not None:
        following = rules.department(chain[-1].fallback)
        if following is None or any(d.id == following.id for d in chain):
            break
        chain.append(following)
    return tuple(chain)


def route(
    rules: RoutingRules,
    department: Department,
    now: datetime,
    presence: Mapping[str, str] | None,
    open_cases: Mapping[str, int],
    pointers: Mapping[str, str] | None = None,
) -> RoutingDecision:
    """The routing decision for a new case of ``department`` at ``now``.

    ``open_cases``: open cases per staff Matrix ID, over all departments.
    ``pointers``: last assigned staff per department id (round-robin state).
    """
    state = dict(pointers or {})
    chain = fallback_chain(rules, department)
    statuses = [(d, is_live(d, rules, now)) for d in chain]
    for index, (candidate, status) in enumerate(statuses):
        if not status.live:
            continue
        invite, pointer = choose_staff(
            candidate, presence, open_cases, state.get(candidate.id)
        )
        if invite:
            if pointer is not None:
                state[candidate.id] = pointer
            return RoutingDecision(
                "live", candidate.id, "free_staff", status, invite, index > 0, state
            )
    for index, (candidate, status) in enumerate(statuses):
        if status.live and available_staff(candidate, presence):
            return RoutingDecision(
                "queued", candidate.id, "all_busy", status, (), index > 0, state
            )
    reason = "nobody_online" if any(s.live for _, s in statuses) else "closed"
    return RoutingDecision(
        "offline", department.id, reason, statuses[0][1], (), False, state
    )


def serving_slots(department: Department, presence: Mapping[str, str] | None) -> int:
    """How many cases the department's online staff handle at once."""
    return len(available_staff(department, presence)) * department.max_cases_per_staff


def estimate_wait(position: int, average_case: timedelta, slots: int) -> timedelta:
    """Estimated wait of the citizen at queue ``position`` (1 = next).

    With ``slots`` cases handled at once, each taking ``average_case``, a slot frees
    up every ``average_case / slots`` on average; rounded up to whole minutes.
    """
    if position < 1:
        raise ValueError("queue positions start at 1")
    seconds = average_case.total_seconds() * position / max(slots, 1)
    return timedelta(minutes=max(1, math.ceil(seconds / 60)))


def _rotation(department: Department, last_assigned: str | None) -> list[str]:
    """Staff in configured order, starting after ``last_assigned``."""
    mxids = list(dict.fromkeys(s.mxid for s in department.staff))
    if last_assigned in mxids:
        cut = mxids.index(last_assigned) + 1
        return mxids[cut:] + mxids[:cut]
    return mxids
