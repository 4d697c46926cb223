"""The edge of routing: who gets a new case, the waiting line, the team notices.

The decisions are the pure functions of :mod:`bots.routing.strategy` and
:mod:`bots.routing.queue`; this module feeds them what is true right now (staff
presence from Synapse, open cases from the database, round-robin pointers derived
from the cases already routed) and carries the result out (invites, the citizen's
timeline, the team room). One lock makes every decision see the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mautrix.errors import MatrixError
from mautrix.types import RoomID, UserID

from bridge.clock import as_utc, routing_now, utcnow
from bridge.departments.availability import Availability, AvailabilityState
from bridge.departments.model import Department
from bridge.departments.office_hours import is_live
from bridge.i18n import Localized, say, staff_line
from bridge.lifecycle import DomainEvent, InvalidTransition, Kind, State

from .pointers import Pointers
from .presence import Presence
from .queue import OpenCase, last_pointers, open_cases_per_staff, queue_places
from .strategy import RoutingDecision, choose_staff, fallback_chain, route

if TYPE_CHECKING:
    from bridge.case import CaseService
    from bridge.config import Config
    from bridge.db.models import Case
    from bridge.db.store import Store
    from bridge.team import TeamRooms

log = logging.getLogger("buergerchat.routing")

#: The cluster lock every routing decision holds (bridge.cluster).
ROUTING = "routing"
#: How long one availability answer serves every widget asking (seconds).
AVAILABILITY_TTL = 5.0


def local_time(value: datetime | None, config: Config) -> str | None:
    if value is None:
        return None
    return value.astimezone(config.routing.zone).isoformat()


class Dispatcher:
    def __init__(
        self, config: Config, store: Store, cases: CaseService, team: TeamRooms
    ) -> None:
        self.config = config
        self.store = store
        self.cases = cases
        self.team = team
        #: Last staff picked alone per department (round robin continues after),
        #: as read under the lock.
        self.pointers: dict[str, str] = {}
        self._stored_pointers = Pointers(store.engine)
        self._presence = Presence(config, cases)
        self._announcing: set[str] = set()
        self._availability: tuple[float, dict[str, Availability]] | None = None
        self._availability_lock = asyncio.Lock()
        self._generation = 0

    async def load(self) -> None:
        """Round-robin pointers as stored; a database of an older version has
        none yet: they are derived from the cases routed before."""
        async with self.cases.cluster.lock(ROUTING):  # two starting at once
            self.pointers = await self._stored_pointers.read()
            if not self.pointers:
                await self._derive_pointers()

    async def _derive_pointers(self) -> None:
        history = [
            (
                c.department,
                as_utc(c.routed_at).isoformat() if c.routed_at else "",
                tuple(c.invited or ()),
            )
            for c in await self.store.recent_cases(500)
        ]
        self.pointers = last_pointers(history)
        await self._stored_pointers.write(self.pointers)

    @asynccontextmanager
    async def deciding(self) -> AsyncIterator[None]:
        """One routing decision at a time in the whole cluster (every bridge
        process), each starting from the pointers the one before left."""
        async with self.cases.cluster.lock(ROUTING):
            self.forget_availability()
            before = await self._stored_pointers.read()
            self.pointers = dict(before)
            try:
                yield
            finally:
                # Also after an error half-way: cases routed before it moved
                # the rotation on.
                await self._stored_pointers.write(
                    {d: m for d, m in self.pointers.items() if before.get(d) != m}
                )

    # --- what is true right now -------------------------------------------------

    async def presence(
        self, departments: Iterable[Department]
    ) -> dict[str, str] | None:
        """Presence per staff member, or None when ``routing.use_presence`` is off
        (then everyone counts as online)."""
        return await self._presence.of(departments)

    async def availability(self) -> dict[str, Availability]:
        """Per department, what a chat started now would meet (see
        :mod:`bridge.departments.availability`): the same decision as
        :meth:`open_case`, without making it. Kept for a few seconds, as every
        widget asks."""
        now = time.monotonic()
        if self._availability is not None and now < self._availability[0]:
            return self._availability[1]
        async with self._availability_lock:
            if self._availability is not None and now < self._availability[0]:
                return self._availability[1]
            # Kept only if no decision ran meanwhile: one that was half done
            # (cases read before it stored its own) must not be kept for 5 s.
            cluster = self.cases.cluster
            generation, deciding = self._generation, cluster.locked(ROUTING)
            answer = await self._compute_availability()
            if not deciding and not cluster.locked(ROUTING):
                if generation == self._generation:
                    self._availability = (time.monotonic() + AVAILABILITY_TTL, answer)
            return answer

    def forget_availability(self) -> None:
        """A case opened, moved or closed: the next question is answered anew."""
        self._generation += 1
        self._availability = None

    async def _compute_availability(self) -> dict[str, Availability]:
        rules = self.config.routing
        departments = self.config.departments
        presence = await self.presence(departments)
        cases = await self.store.routed_cases()
        counts = open_cases_per_staff(self._open(cases))
        now = routing_now()
        answer: dict[str, Availability] = {}
        for department in departments:
            decision = route(rules, department, now, presence, counts, self.pointers)
            hours = decision.status
            wait = None
            if decision.kind == "queued":
                target = self.config.department(decision.department) or department
                line = [
                    c.case_id
                    for c in cases
                    if self.waiting(c) and c.department == target.id
                ]
                places = queue_places(target, [*line, "next"], presence)
                wait = places["next"].estimated_wait_minutes
            state: AvailabilityState
            if decision.kind == "live":
                state = "available"
            elif decision.kind == "queued":
                state = "busy"
            elif decision.reason == "closed":
                state = "closed"
            else:
                state = "nobody_online"
            answer[department.id] = Availability(
                state=state,
                department=decision.department,
                until=hours.until,
                next_opening=hours.next_opening,
                wait_minutes=wait,
            )
        return answer

    @staticmethod
    def _open(cases: Iterable[Any]) -> list[OpenCase]:
        """Cases, or rows of their routing columns (Store.routed_summaries)."""
        return [
            OpenCase(
                c.case_id, c.department, c.state, c.assignee, (*(c.invited or ()),)
            )
            for c in cases
        ]

    @staticmethod
    def waiting(case: Case) -> bool:
        """In a queue: queued and not told that live hours ended."""
        return case.state == "queued" and not case.queue_closed

    # --- a new case -----------------------------------------------------------

    async def open_case(
        self,
        *,
        department: Department,
        topic: str | None,
        citizen_name: str | None,
        language: str,
        client_key: str | None = None,
    ) -> tuple[RoutingDecision, Case | None, str | None]:
        """Decide live/queued/offline for a new case of ``department`` and, unless
        offline, create it (with the chosen staff invited). Offline creates
        nothing: the citizen leaves a message through the offline form."""
        async with self.deciding():
            rules = self.config.routing
            presence = await self.presence(fallback_chain(rules, department))
            summaries = await self.store.routed_summaries()
            counts = open_cases_per_staff(self._open(summaries))
            decision = route(
                rules, department, routing_now(), presence, counts, self.pointers
            )
            if decision.kind == "offline":
                log.info(
                    "new case for %s: offline (%s)", department.id, decision.reason
                )
                return decision, None, None
            target = self.config.department(decision.department) or department
            case, token = await self.cases.open_case(
                department=target,
                topic=topic,
                citizen_name=citizen_name,
                language=language,
                state=decision.kind,
                invite=decision.invite,
                routed_at=utcnow() if decision.invite else None,
                client_key=client_key,
                requested=department,
                room=False,
            )
            self.pointers = dict(decision.pointers)
            if decision.kind == "queued":
                case = await self._queue_new(target, case, presence)
        # The room (about five Synapse requests) outside the lock: routing
        # decided and recorded whom to invite; other cases open meanwhile.
        await self.cases.open_room(case)
        log.info(
            "case %s: %s in %s (%s) invited %s",
            case.reference,
            decision.kind,
            target.id,
            decision.reason,
            ", ".join(decision.invite) or "nobody",
        )
        return decision, case, token

    # --- the waiting line -------------------------------------------------------

    async def _queue_new(
        self, department: Department, case: Case, presence: dict[str, str] | None
    ) -> Case:
        """A new case joins the end of the department's line; everyone's place
        is told anew."""
        line = [
            c
            for c in await self.store.routed_cases()
            if self.waiting(c)
            and c.department == department.id
            and c.case_id != case.case_id
        ]
        await self._refresh_queue(department, [*line, case], presence)
        return await self.store.get_case(case.case_id) or case

    async def _refresh_queue(
        self,
        department: Department,
        line: Sequence[Case],
        presence: dict[str, str] | None,
    ) -> None:
        """Tell each waiting citizen their position and wait when either changed."""
        places = queue_places(department, [c.case_id for c in line], presence)
        for case in line:
            place = places[case.case_id].as_json()
            minutes = place["estimated_wait_minutes"]
            if (case.queue_position, case.queue_wait_minutes) == (
                place["position"],
                minutes,
            ):
                continue
            case.queue_position, case.queue_wait_minutes = place["position"], minutes
            await self.store.update_case(
                case.case_id,
                queue_position=place["position"],
                queue_wait_minutes=minutes,
            )
            await self.cases.add_system_event(
                case.case_id,
                say(
                    "queue",
                    case.language,
                    position=place["position"],
                    minutes=minutes,
                ),
                kind="queue",
                position=place["position"],
                estimated_wait_minutes=place["estimated_wait_minutes"],
            )

    async def drain(self) -> None:
        """Route the head of each queue while someone is free; tell queued citizens
        when live hours ended; update everyone's position."""
        async with self.deciding():
            cases = await self.store.routed_cases()
            lines: dict[str, list[Case]] = {}
            for case in cases:
                if self.waiting(case):
                    lines.setdefault(case.department, []).append(case)
            if not lines:
                return
            counts = open_cases_per_staff(self._open(cases))
            now = routing_now()
            for department_id, line in lines.items():
                department = self.config.department(department_id)
                status = (
                    is_live(department, self.config.routing, now)
                    if department
                    else None
                )
                if department is None or status is None or not status.live:
                    await self._close_queue(
                        line, status.next_opening if status else None
                    )
                    continue
                presence = await self.presence([department])
                while line:
                    invite, pointer = choose_staff(
                        department, presence, counts, self.pointers.get(department.id)
                    )
                    if not invite:
                        break
                    if pointer is not None:
                        self.pointers[department.id] = pointer
                    for mxid in invite:
                        counts[mxid] = counts.get(mxid, 0) + 1
                    await self._route_queued(line.pop(0), department, invite)
                await self._refresh_queue(department, line, presence)

    async def _route_queued(
        self, case: Case, department: Department, invite: tuple[str, ...]
    ) -> None:
        try:
            await self.cases.lifecycle.transition(
                case.case_id,
                State.LIVE,
                kind=Kind.ROUTED,
                expect=frozenset({State.QUEUED}),
                data={"department": department.id, "invited": list(invite)},
                invited=list(invite),
                routed_at=utcnow(),
                queue_position=None,
                queue_wait_minutes=None,
            )
        except InvalidTransition as e:
            log.info("queued case %s not routed: %s", case.reference, e)
            return
        case = await self.store.get_case(case.case_id) or case
        if case.room_id:
            await self.invite(case.room_id, invite)
        await self.cases.add_system_event(
            case.case_id,
            say("routed", case.language, department=department.name),
            kind="routed",
            department=department.id,
        )
        names = ", ".join(self.cases.staff_name("", m) for m in invite)
        await self.announce(case, staff_line("team.from_queue", names=names))
        log.info("queued case %s routed to %s", case.reference, ", ".join(invite))

    async def _close_queue(self, line: Sequence[Case], opens: datetime | None) -> None:
        """Live hours ended while these citizens waited: offer the offline path."""
        for case in line:
            case.queue_closed, case.queue_position = True, None
            try:  # a domain event: a bot may react (a partner's case goes back)
                await self.cases.lifecycle.transition(
                    case.case_id,
                    State.QUEUED,
                    kind=Kind.QUEUE_CLOSED,
                    expect=frozenset({State.QUEUED}),
                    queue_closed=True,
                    queue_position=None,
                    queue_wait_minutes=None,
                )
            except InvalidTransition:
                continue  # closed meanwhile
            await self.cases.add_system_event(
                case.case_id,
                say("queue_closed", case.language),
                kind="queue_closed",
                offline_offer=True,
                next_opening=local_time(opens, self.config),
            )
            log.info("queue closed for %s (end of live hours)", case.reference)

    async def invite(self, room_id: str, mxids: Iterable[str]) -> None:
        for mxid in mxids:
            try:
                await self.cases.az.intent.invite_user(RoomID(room_id), UserID(mxid))
            except MatrixError as e:
                log.info("could not invite %s to %s: %s", mxid, room_id, e)

    # --- a transfer -------------------------------------------------------------

    async def transfer(
        self,
        case: Case,
        target: Department,
        *,
        actor: str | None = None,
        note: str | None = None,
    ) -> tuple[str, ...]:
        """Move ``case`` to ``target``; whom to invite by the target's strategy.
        When nobody there is free right now, the whole team is invited."""
        async with self.deciding():
            presence = await self.presence([target])
            others = [
                c for c in await self.store.routed_cases() if c.case_id != case.case_id
            ]
            counts = open_cases_per_staff(self._open(others))
            invite, pointer = choose_staff(
                target, presence, counts, self.pointers.get(target.id)
            )
            if not invite:
                invite = tuple(dict.fromkeys(s.mxid for s in target.staff))
            elif pointer is not None:
                self.pointers[target.id] = pointer
            await self.cases.lifecycle.transition(
                case.case_id,
                State.LIVE,
                kind=Kind.TRANSFERRED,
                actor=actor,
                data={"from": case.department, "to": target.id, "note": note},
                invited=list(invite),
                routed_at=utcnow(),
                queue_position=None,
                queue_wait_minutes=None,
                queue_closed=False,
                department=target.id,
                assignee=None,
            )
            case.department, case.assignee, case.state = target.id, None, "live"
            case.invited, case.queue_position, case.queue_closed = (
                list(invite),
                None,
                False,
            )
        return invite

    # --- team notices -------------------------------------------------------------

    async def announce(self, case: Case, extra: Localized | None = None) -> bool:
        first = await self.store.first_citizen_message(case.case_id)
        return await self.team.announce_case(case, first_message=first, extra=extra)

    async def announce_once(self, case: Case, first_message: str | None) -> None:
        """The notice about a new case in its team room, once per case: its key
        makes a second attempt (after a crash, or while Synapse was away) the
        same notice, and the flag is set only once the notice is stored."""
        if case.case_id in self._announcing:
            return
        self._announcing.add(case.case_id)
        try:
            fresh = await self.store.get_case(case.case_id)
            if fresh is None or fresh.announced_at is not None:
                return
            if fresh.state not in ("live", "queued") or fresh.closed_at is not None:
                return
            invited = fresh.invited or []
            names = ", ".join(self.cases.staff_name("", m) for m in invited)
            if await self.team.announce_case(
                fresh,
                first_message=first_message,
                extra=staff_line("team.invited", names=names) if names else None,
                key=f"announce:{fresh.case_id}",
            ):
                await self.store.update_case(fresh.case_id, announced_at=utcnow())
        finally:
            self._announcing.discard(case.case_id)

    async def on_citizen_message(self, event: DomainEvent) -> None:
        """Kind.CITIZEN_MESSAGE: the first citizen message goes into the team
        notice (a case nobody wrote in is announced by the tick)."""
        case = event.case
        if case is not None and case.announced_at is None:
            await self.announce_once(case, event.data["body"])

    async def on_close(self, event: DomainEvent) -> None:
        """Kind.CLOSED: a place is free, the queue moves (the tick would, later)."""
        self.forget_availability()
        await self.drain()
