"""The case lifecycle on SQLite and PostgreSQL: allowed moves only, each move
and its domain event in one transaction, subscribers told after the commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import cast

import pytest

from bridge.db.store import Store
from bridge.jobs import JobQueue, JobRun
from bridge.lifecycle import (
    TRANSITIONS,
    DomainEvent,
    InvalidTransition,
    Kind,
    Lifecycle,
    State,
    allowed,
)


async def opened(lifecycle: Lifecycle, state: State = State.QUEUED) -> str:
    case, _ = await lifecycle.open(
        state=state,
        data={"department": "buergerbuero"},
        case_id=f"c_{state.value}",
        reference_prefix="BC",
        department="buergerbuero",
        topic=None,
        language="de",
        citizen_name="Erika",
        ghost_mxid=f"@bc_{state.value}:test",
    )
    return case.case_id


def test_the_transition_table_is_closed_and_ends_in_purged() -> None:
    """Every state can be reached from a new case, only 'purged' follows
    'closed', nothing follows 'purged', and a closed case is never reopened."""
    reachable: set[State] = set()
    todo: list[State | None] = [None]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    assert reachable == set(State)
    assert TRANSITIONS[State.CLOSED] == {State.PURGED}
    assert TRANSITIONS[State.PURGED] == frozenset()
    assert not any(allowed(State.CLOSED, s) for s in State if s is not State.PURGED)
    # An erasure request does not wait for the case to close.
    assert all(allowed(s, State.PURGED) for s in State if s is not State.PURGED)


async def test_a_case_moves_and_every_move_is_recorded(store: Store) -> None:
    """queued → live (routed) → claimed → transferred → closed: the case's
    columns follow, and its history lists each event with who did it."""
    lifecycle = Lifecycle(store)
    case_id = await opened(lifecycle)
    await lifecycle.transition(case_id, State.LIVE, invited=["@a:t"])
    await lifecycle.record(case_id, Kind.CLAIMED, actor="@a:t", assignee="@a:t")
    await lifecycle.transition(
        case_id,
        State.LIVE,
        kind=Kind.TRANSFERRED,
        actor="@a:t",
        data={"to": "bauen"},
        department="bauen",
        assignee=None,
    )
    await lifecycle.transition(case_id, State.CLOSED, actor="@b:t")
    case = await store.get_case(case_id)
    assert case is not None
    assert (case.state, case.department, case.assignee) == ("closed", "bauen", None)
    assert case.closed_at is not None and case.invited == ["@a:t"]
    history = await lifecycle.history(case_id)
    assert [(e.kind, e.from_state, e.to_state, e.actor) for e in history] == [
        (Kind.OPENED, None, State.QUEUED, None),
        (Kind.ROUTED, State.QUEUED, State.LIVE, None),
        (Kind.CLAIMED, State.LIVE, State.LIVE, "@a:t"),
        (Kind.TRANSFERRED, State.LIVE, State.LIVE, "@a:t"),
        (Kind.CLOSED, State.LIVE, State.CLOSED, "@b:t"),
    ]
    assert history[3].data == {"to": "bauen"}


async def test_a_refused_move_changes_nothing(store: Store) -> None:
    """A closed case is not routed, claimed or closed again; a queued case is
    routed only while it is still queued; nothing is written for a refusal."""
    lifecycle = Lifecycle(store)
    case_id = await opened(lifecycle, State.LIVE)
    with pytest.raises(InvalidTransition):
        await lifecycle.transition(
            case_id, State.LIVE, expect=frozenset({State.QUEUED})
        )
    await lifecycle.transition(case_id, State.CLOSED)
    for attempt in (
        lifecycle.transition(case_id, State.LIVE),
        lifecycle.transition(case_id, State.CLOSED),
        lifecycle.record(case_id, Kind.CLAIMED, assignee="@a:t"),
    ):
        with pytest.raises(InvalidTransition):
            await attempt
    case = await store.get_case(case_id)
    assert case is not None and (case.state, case.assignee) == ("closed", None)
    assert [e.kind for e in await lifecycle.history(case_id)] == [
        Kind.OPENED,
        Kind.CLOSED,
    ]


async def test_two_closes_at_once_close_once(store: Store) -> None:
    """Two staff members type !close at the same moment, through two bridge
    processes (two lifecycles, no shared lock): one close, one event."""
    lifecycle, other = Lifecycle(store), Lifecycle(store)
    case_id = await opened(lifecycle, State.LIVE)
    results = await asyncio.gather(
        *(lc.transition(case_id, State.CLOSED) for lc in (lifecycle, other)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == [
        "DomainEvent",
        "InvalidTransition",
    ]
    kinds = [e.kind for e in await lifecycle.history(case_id)]
    assert kinds.count(Kind.CLOSED) == 1


async def test_subscribers_hear_their_kind_after_the_commit(store: Store) -> None:
    """A subscriber of 'closed' sees the case closed in the database; a failing
    subscriber does not stop the next one nor undo the move."""
    lifecycle = Lifecycle(store)
    seen: list[tuple[str, str | None]] = []

    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("a bot's bug")

    async def archive(event: DomainEvent) -> None:
        case = await store.get_case(event.case_id)
        seen.append((event.kind.value, case.state if case else None))

    lifecycle.subscribe(Kind.CLOSED, broken)
    lifecycle.subscribe(Kind.CLOSED, archive)
    case_id = await opened(lifecycle, State.OFFLINE)
    await lifecycle.transition(case_id, State.LIVE)
    assert seen == []
    await lifecycle.transition(case_id, State.CLOSED)
    assert seen == [("closed", "closed")]


async def test_a_reaction_job_is_written_with_the_move(store: Store) -> None:
    """react(): the job is in the database as soon as the move is, with the
    event's id; a refused move leaves no job; opening reacts too. Nothing runs
    in this process (no worker): a crash right after the commit loses nothing."""
    jobs = JobQueue(store.engine)
    jobs.kind("archive", _never)
    jobs.kind("welcome", _never)
    lifecycle = Lifecycle(store, jobs)
    lifecycle.react(Kind.CLOSED, "archive")
    lifecycle.react(Kind.OPENED, "welcome")
    case_id = await opened(lifecycle, State.LIVE)
    opened_event = (await lifecycle.history(case_id))[0]
    welcome = await jobs.get(f"welcome:{opened_event.id}")
    assert welcome is not None and welcome.case_id == case_id
    with pytest.raises(InvalidTransition):
        await lifecycle.transition(case_id, State.OFFLINE)
    closed = await lifecycle.transition(case_id, State.CLOSED)
    job = await jobs.get(f"archive:{closed.id}")
    assert job is not None and job.payload == {"event": closed.id}
    assert await lifecycle.event(job.payload["event"]) == closed
    counts = await jobs.counts()
    assert counts["queued"] == 2


async def test_a_reaction_job_runs_and_is_retried(store: Store) -> None:
    """The job queue runs the reaction; one that fails is queued again, not lost."""
    jobs = JobQueue(store.engine)
    ran: list[int] = []

    async def archive(run: JobRun) -> None:
        ran.append(run.payload["event"])
        if len(ran) == 1:
            raise ConnectionError("Synapse is away")

    jobs.kind("archive", archive, base=timedelta(0), cap=timedelta(0))
    lifecycle = Lifecycle(store, jobs)
    lifecycle.react(Kind.CLOSED, "archive")
    case_id = await opened(lifecycle, State.LIVE)
    closed = await lifecycle.transition(case_id, State.CLOSED)
    await jobs.run_due()
    await jobs.run_due()
    assert ran == [closed.id, closed.id]
    job = await jobs.get(f"archive:{closed.id}")
    assert job is not None and job.state == "done" and job.attempts == 2


def test_messages_cannot_be_reactions_nor_moves() -> None:
    lifecycle = Lifecycle(cast(Store, object()), cast(JobQueue, object()))
    with pytest.raises(ValueError, match="not stored"):
        lifecycle.react(Kind.STAFF_MESSAGE, "mail")
    with pytest.raises(RuntimeError, match="job queue"):
        Lifecycle(cast(Store, object())).react(Kind.CLOSED, "archive")


async def test_message_events_reach_subscribers_with_the_case(store: Store) -> None:
    """publish(): subscribers get the case without looking it up; an error of a
    kind the caller names reaches it (the inbox retries), others are logged."""
    lifecycle = Lifecycle(store)
    case_id = await opened(lifecycle, State.LIVE)
    case = await store.get_case(case_id)
    assert case is not None
    seen: list[DomainEvent] = []

    async def mail(event: DomainEvent) -> None:
        seen.append(event)
        if event.data.get("fail"):
            raise ConnectionError(event.data["fail"])

    lifecycle.subscribe(Kind.STAFF_MESSAGE, mail)
    await lifecycle.publish(Kind.STAFF_MESSAGE, case, {"seq": 3}, actor="@a:t")
    assert seen[0].case is case and seen[0].id is None
    assert (seen[0].to_state, seen[0].actor) == (State.LIVE, "@a:t")
    await lifecycle.publish(Kind.STAFF_MESSAGE, case, {"fail": "logged"})
    with pytest.raises(ConnectionError):
        await lifecycle.publish(
            Kind.STAFF_MESSAGE, case, {"fail": "db"}, propagate=(ConnectionError,)
        )
    with pytest.raises(ValueError):
        await lifecycle.publish(Kind.CLOSED, case, {})
    assert [e.kind for e in await lifecycle.history(case_id)] == [Kind.OPENED]


async def _never(run: JobRun) -> None:
    raise AssertionError("no worker runs in this test")
