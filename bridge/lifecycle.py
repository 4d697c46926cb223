"""A case's life: its states, the transitions allowed between them, and the
domain event each transition leaves behind.

Every change of a case's state (and of who has it and where it is) goes through
:meth:`Lifecycle.transition`: one database transaction that checks the move is
allowed, writes the case's columns and appends a typed :class:`DomainEvent` to
``case_transitions``. After the commit, subscribers of that kind are called
(in this process, in order; a failing one is logged and does not stop the
others). The table is the case's record: the transcript, the audit and the
data-protection export read it.

States (the column ``cases.state``; what the citizen API shows):

=========  ============================================  ===================
state      entered when                                  leaves to
=========  ============================================  ===================
queued     opened while live but everyone is busy        live, offline, closed
live       opened or routed while someone is free;       live, handed_over,
           claimed and transferred keep it live          closed
offline    message left outside live hours               live, closed
handed_   a partner authority took the case over        queued (given
over       (federation: the citizen writes on, with the  back), closed
           partner's staff)
booked     video appointment booked                      waiting, closed
waiting    citizen in the waiting room (an appointment   in_call, closed
           or a walk-in)
in_call    staff pulled the citizen into the call        live, closed
closed     staff or inactivity closed it                 purged
purged     retention or erasure is removing it; the      —
           row goes once Synapse and the files are
           clean (bridge.privacy)
=========  ============================================  ===================

``claimed`` is no state of its own: a live case with an ``assignee`` (the API has
always shown such a case as ``live``).

Bots react in two ways. :meth:`Lifecycle.subscribe` calls a handler in this
process after the commit (for what a later tick would also do, e.g. moving the
queue). :meth:`Lifecycle.react` makes every event of a kind enqueue a job *in the
same transaction* as the move, so the reaction survives a crash right after the
commit and is retried by the job queue (e.g. archiving the transcript).

Messages are events too (``citizen_message``, ``staff_message``, ``staff_file``,
``staff_joined``), but they move no state and their record is the citizen's
timeline (``case_events``): :meth:`Lifecycle.publish` hands them to subscribers
each time they are worked off — at least once, so subscribers are idempotent
(their mails and sends carry keys).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from . import cause
from .clock import as_utc, utcnow
from .db.models import Case, CaseTransition, Job

if TYPE_CHECKING:
    from .db.store import Store
    from .jobs import JobQueue

log = logging.getLogger("buergerchat.lifecycle")
LOCK_STRIPES = 64
BUSY_RETRIES = 5
#: Key in a recorded event's data: the cause (appservice event and handler) that
#: made it, so a retry of that cause recognises its own move (by_this_cause).
CAUSE = "cause"


class State(StrEnum):
    QUEUED = "queued"
    LIVE = "live"
    OFFLINE = "offline"
    BOOKED = "booked"
    WAITING = "waiting"
    IN_CALL = "in_call"
    HANDED_OVER = "handed_over"
    CLOSED = "closed"
    PURGED = "purged"


class Kind(StrEnum):
    """What happened to a case (a domain event)."""

    OPENED = "opened"
    QUEUED = "queued"
    ROUTED = "routed"
    OFFLINE = "offline"
    CLAIMED = "claimed"
    TRANSFERRED = "transferred"
    CLOSED = "closed"
    PURGED = "purged"
    # No state moves; published by the case service (see the module docstring).
    CITIZEN_MESSAGE = "citizen_message"
    STAFF_MESSAGE = "staff_message"
    STAFF_FILE = "staff_file"
    STAFF_JOINED = "staff_joined"
    STAFF_COMMAND = "staff_command"
    # The virtual citizen office (bots/booking).
    ARRIVED = "arrived"
    CALLED = "called"
    CALL_ENDED = "call_ended"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    NOT_SERVED = "not_served"
    GUEST_INVITED = "guest_invited"
    # Federation with partner authorities (bots/handover).
    HANDOVER_ASKED = "handover_asked"
    HANDOVER_AGREED = "handover_agreed"
    HANDOVER_DECLINED = "handover_declined"
    #: The taking side: a partner's case became one of ours.
    HANDOVER_RECEIVED = "handover_received"
    HANDED_OVER = "handed_over"
    #: The taking side could not serve it after all (its hours ended while
    #: the citizen waited): it goes back to the handing side's line.
    HANDED_BACK = "handed_back"
    #: Live hours ended while the case waited in its line (bots/routing).
    QUEUE_CLOSED = "queue_closed"


#: Events that are not stored in ``case_transitions``.
MESSAGE_KINDS = frozenset(
    {
        Kind.CITIZEN_MESSAGE,
        Kind.STAFF_MESSAGE,
        Kind.STAFF_FILE,
        Kind.STAFF_JOINED,
        Kind.STAFF_COMMAND,
    }
)
S = State
#: Which state may follow which. ``None`` is a case that does not exist yet.
#: Every case may be purged: an erasure request (Art. 17 DSGVO) does not wait
#: for a case to close.
TRANSITIONS: dict[State | None, frozenset[State]] = {
    None: frozenset({S.QUEUED, S.LIVE, S.OFFLINE, S.BOOKED}),
    S.QUEUED: frozenset({S.QUEUED, S.LIVE, S.OFFLINE, S.CLOSED, S.PURGED}),
    S.LIVE: frozenset({S.LIVE, S.HANDED_OVER, S.CLOSED, S.PURGED}),
    S.OFFLINE: frozenset({S.OFFLINE, S.LIVE, S.CLOSED, S.PURGED}),
    S.BOOKED: frozenset({S.BOOKED, S.WAITING, S.CLOSED, S.PURGED}),
    S.WAITING: frozenset({S.WAITING, S.IN_CALL, S.CLOSED, S.PURGED}),
    S.IN_CALL: frozenset({S.IN_CALL, S.LIVE, S.CLOSED, S.PURGED}),
    # Back from the partner (bots/handover): into the line.
    S.HANDED_OVER: frozenset({S.HANDED_OVER, S.QUEUED, S.CLOSED, S.PURGED}),
    S.CLOSED: frozenset({S.PURGED}),
    S.PURGED: frozenset(),
}
#: The event a move into each state leaves behind, unless the caller names one.
ENTERED_BY: dict[State, Kind] = {
    S.QUEUED: Kind.QUEUED,
    S.LIVE: Kind.ROUTED,
    S.OFFLINE: Kind.OFFLINE,
    S.WAITING: Kind.ARRIVED,
    S.IN_CALL: Kind.CALLED,
    S.HANDED_OVER: Kind.HANDED_OVER,
    S.CLOSED: Kind.CLOSED,
    S.PURGED: Kind.PURGED,
}


def allowed(current: State | None, to: State) -> bool:
    return to in TRANSITIONS[current]


class _Raced(Exception):
    """Another connection moved the case between our read and our write."""


class InvalidTransition(Exception):
    """A move the lifecycle does not allow: a bug of the caller, who checks
    what the citizen or staff may do (and answers them) before moving."""


@dataclass(frozen=True)
class DomainEvent:
    #: The row in ``case_transitions``; None for message events.
    id: int | None
    case_id: str
    kind: Kind
    from_state: State | None
    to_state: State
    at: datetime
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: The case as it was when a message event was published (saves a look-up).
    case: Case | None = field(default=None, compare=False, repr=False)


Subscriber = Callable[[DomainEvent], Awaitable[None]]


class Lifecycle:
    """Moves cases between states; see the module docstring."""

    def __init__(self, store: Store, jobs: JobQueue | None = None) -> None:
        self.store = store
        self.jobs = jobs
        self._subscribers: dict[Kind, list[Subscriber]] = {}
        self._reactions: dict[Kind, list[str]] = {}
        # Moves of one case in this process one after another (SQLite has no
        # row locks; PostgreSQL's FOR UPDATE orders them across processes).
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    def subscribe(self, kind: Kind, subscriber: Subscriber) -> None:
        """Call ``subscriber`` in this process after each event of ``kind``."""
        self._subscribers.setdefault(kind, []).append(subscriber)

    def react(self, kind: Kind, job_kind: str) -> None:
        """Enqueue a job of ``job_kind`` (payload: ``event``, the event's id) in
        the transaction of every event of ``kind``; its handler loads the event
        with :meth:`event`. Only for stored events (not messages)."""
        if self.jobs is None:
            raise RuntimeError("durable reactions need the job queue")
        if kind in MESSAGE_KINDS:
            raise ValueError(f"{kind.value} events are not stored; subscribe instead")
        self._reactions.setdefault(kind, []).append(job_kind)

    def _reaction_jobs(self, row: CaseTransition) -> list[Job]:
        return [
            Job(
                kind=job_kind,
                key=f"{job_kind}:{row.id}",
                payload={"event": row.id},
                state="queued",
                run_at=row.at,
                attempts=0,
                case_id=row.case_id,
                created_at=row.at,
            )
            for job_kind in self._reactions.get(Kind(row.kind), [])
        ]

    async def event(self, event_id: int) -> DomainEvent | None:
        async with self.store.session() as s:
            row = await s.get(CaseTransition, event_id)
            return _event(row) if row is not None else None

    async def publish(
        self,
        kind: Kind,
        case: Case,
        data: dict[str, Any],
        *,
        actor: str | None = None,
        propagate: tuple[type[BaseException], ...] = (),
    ) -> None:
        """A message event to the subscribers (not stored: see the module
        docstring). Errors of the ``propagate`` types reach the caller (so an
        appservice transaction is worked off again); others are logged."""
        if kind not in MESSAGE_KINDS:
            raise ValueError(f"{kind.value} is a state move; use transition()")
        state = State(case.state)
        event = DomainEvent(
            None, case.case_id, kind, state, state, utcnow(), actor, data, case
        )
        await self._publish(event, propagate)

    async def transition(
        self,
        case_id: str,
        to: State,
        *,
        kind: Kind | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        expect: frozenset[State] | None = None,
        **columns: Any,
    ) -> DomainEvent:
        """Move the case to ``to`` (and set ``columns``, e.g. ``department``,
        ``assignee`` or ``invited``) and record the event, in one transaction.
        ``expect`` narrows the states the case may be in now (a queued case is
        routed only while it is still queued); :class:`InvalidTransition`
        otherwise."""
        event_kind = kind or ENTERED_BY.get(to) or Kind.ROUTED
        lock = self._locks[hash(case_id) % LOCK_STRIPES]
        for attempt in range(1, BUSY_RETRIES + 1):
            try:
                async with lock:
                    event = await self._move(
                        case_id, to, event_kind, actor, data, expect, columns
                    )
                break
            except (OperationalError, _Raced) as e:
                # SQLite: another connection wrote first ("database is locked"),
                # or moved the case after we read it; read again, decide again.
                if attempt == BUSY_RETRIES:
                    if isinstance(e, _Raced):
                        raise InvalidTransition(
                            f"Case {case_id} kept changing; try again."
                        ) from e
                    raise
                await asyncio.sleep(0.05 * attempt)
        if self._reactions.get(event_kind) and self.jobs is not None:
            self.jobs.wake()
        await self._publish(event)
        return event

    async def _move(
        self,
        case_id: str,
        to: State,
        event_kind: Kind,
        actor: str | None,
        data: dict[str, Any] | None,
        expect: frozenset[State] | None,
        columns: dict[str, Any],
    ) -> DomainEvent:
        columns = dict(columns)
        now = utcnow()
        async with self.store.session.begin() as s:
            case = await s.scalar(
                select(Case).where(Case.case_id == case_id).with_for_update()
            )
            if case is None:
                raise InvalidTransition(f"There is no case {case_id}.")
            current = State(case.state)
            if not allowed(current, to) or (expect and current not in expect):
                raise InvalidTransition(
                    f"Case {case.reference} is {current.value}; it cannot be "
                    f"{event_kind.value} ({to.value}) now."
                )
            if to is S.CLOSED and case.closed_at is None:
                columns.setdefault("closed_at", now)
            # Only if nobody moved it since we read it (SQLite reads without a
            # lock): otherwise read again and decide again.
            moved = await s.execute(
                update(Case)
                .where(Case.case_id == case_id, Case.state == current.value)
                .values(state=to.value, **columns)
            )
            if getattr(moved, "rowcount", 0) != 1:
                raise _Raced()
            recorded = dict(data or {})
            if (key := cause.current()) is not None:
                recorded.setdefault(CAUSE, key)
            row = CaseTransition(
                case_id=case_id,
                kind=event_kind.value,
                from_state=current.value,
                to_state=to.value,
                actor=actor,
                data=recorded,
                at=now,
            )
            s.add(row)
            await s.flush()
            s.add_all(self._reaction_jobs(row))
            return _event(row)

    async def open(
        self, *, state: State, data: dict[str, Any] | None = None, **fields: Any
    ) -> tuple[Case, DomainEvent]:
        """Create a case in ``state`` (the store's ``create_case`` fields) and
        its ``opened`` event, in one transaction."""
        if not allowed(None, state):
            raise InvalidTransition(f"A case cannot start {state.value}.")
        case = await self.store.create_case(
            state=state.value,
            opened=dict(data or {}),
            with_opened=self._reaction_jobs,
            **fields,
        )
        event = (await self.history(case.case_id))[0]
        if self._reactions.get(Kind.OPENED) and self.jobs is not None:
            self.jobs.wake()
        await self._publish(event)
        return case, event

    async def record(
        self,
        case_id: str,
        kind: Kind,
        *,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        **columns: Any,
    ) -> DomainEvent:
        """An event that keeps the state (a claim): allowed in every state that
        may follow itself, so never in a closed case."""
        async with self.store.session() as s:
            state = await s.scalar(select(Case.state).where(Case.case_id == case_id))
        if state is None:
            raise InvalidTransition(f"There is no case {case_id}.")
        return await self.transition(
            case_id,
            State(state),
            kind=kind,
            actor=actor,
            data=data,
            expect=frozenset({State(state)}),
            **columns,
        )

    async def by_this_cause(self, case_id: str, kind: Kind) -> DomainEvent | None:
        """The ``kind`` event of the case that the cause being worked off already
        recorded: an appservice event worked off again after its handler broke
        off past the state move. The handler then finishes its announcements
        (each idempotent) instead of answering "already done"."""
        key = cause.current()
        if key is None:
            return None
        async with self.store.session() as s:
            rows = await s.scalars(
                select(CaseTransition)
                .where(
                    CaseTransition.case_id == case_id,
                    CaseTransition.kind == kind.value,
                )
                .order_by(CaseTransition.id.desc())
            )
            for row in rows:
                if (row.data or {}).get(CAUSE) == key:
                    return _event(row)
        return None

    async def history(self, case_id: str) -> list[DomainEvent]:
        """The case's domain events, oldest first."""
        async with self.store.session() as s:
            rows = await s.scalars(
                select(CaseTransition)
                .where(CaseTransition.case_id == case_id)
                .order_by(CaseTransition.id)
            )
            return [_event(r) for r in rows]

    async def _publish(
        self, event: DomainEvent, propagate: tuple[type[BaseException], ...] = ()
    ) -> None:
        for subscriber in self._subscribers.get(event.kind, []):
            try:
                await subscriber(event)
            except propagate:
                raise
            except Exception:
                log.exception(
                    "subscriber %s failed for %s of %s",
                    getattr(subscriber, "__qualname__", subscriber),
                    event.kind.value,
                    event.case_id,
                )


def _event(row: CaseTransition) -> DomainEvent:
    return DomainEvent(
        id=row.id,
        case_id=row.case_id,
        kind=Kind(row.kind),
        from_state=State(row.from_state) if row.from_state else None,
        to_state=State(row.to_state),
        at=as_utc(row.at),
        actor=row.actor,
        data=dict(row.data or {}),
    )
