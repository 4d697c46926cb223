"""The durable job queue on SQLite and PostgreSQL, with a fake clock: keys,
run-at, the one backoff rule, parking, leases taken over after a crash, two
workers sharing the table, recurring jobs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bridge.clock import FakeClock
from bridge.db.engine import create_engine
from bridge.db.store import Store
from bridge.jobs import (
    DONE,
    PARKED,
    QUEUED,
    GiveUp,
    JobQueue,
    JobRun,
    RetryLater,
    backoff,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 19, 9, 0, tzinfo=UTC))


@pytest.fixture
def queue(store: Store, clock: FakeClock) -> JobQueue:
    return JobQueue(store.engine, clock=clock, lease=timedelta(minutes=1))


def recorder(into: list[str]):  # type: ignore[no-untyped-def]
    async def handler(run: JobRun) -> None:
        into.append(run.key)

    return handler


def test_backoff_doubles_from_base_up_to_the_cap_with_a_spread() -> None:
    """After the n-th failure base·2^(n−1), never above the cap, ±20 %."""
    base, cap = timedelta(seconds=3), timedelta(seconds=60)
    middle = [backoff(n, base=base, cap=cap).total_seconds() for n in (1, 2, 3, 6)]
    assert middle == [3.0, 6.0, 12.0, 60.0]
    assert backoff(2, base=base, cap=cap, spread=0.0).total_seconds() == 4.8
    assert backoff(2, base=base, cap=cap, spread=0.999).total_seconds() < 7.2


async def test_a_key_enqueued_twice_is_one_job_and_runs_once(queue: JobQueue) -> None:
    """The same key again returns the first job, also after it is done."""
    ran: list[str] = []
    queue.kind("note", recorder(ran))
    first, created = await queue.enqueue("note", "k1", {"n": 1})
    again, created_again = await queue.enqueue("note", "k1", {"n": 2})
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.payload == {"n": 1}
    assert await queue.run_due() == 1
    await queue.enqueue("note", "k1", {"n": 3})
    assert await queue.run_due() == 0
    assert ran == ["k1"]
    job = await queue.get("k1")
    assert job is not None and job.state == DONE


async def test_a_job_waits_for_its_run_at(queue: JobQueue, clock: FakeClock) -> None:
    """A reminder for in 10 minutes does not run before."""
    ran: list[str] = []
    queue.kind("reminder", recorder(ran))
    await queue.enqueue("reminder", "r1", run_at=clock.now() + timedelta(minutes=10))
    clock.advance(minutes=9, seconds=59)
    assert await queue.run_due() == 0
    clock.advance(seconds=1)
    assert await queue.run_due() == 1
    assert ran == ["r1"]


async def test_failures_back_off_then_park_once_and_tell(
    queue: JobQueue, clock: FakeClock
) -> None:
    """Three failures: again after about 3 s, then 6 s, then parked with the
    reason, and the kind's hook is told once."""
    attempts: list[int] = []
    parked: list[tuple[str, str]] = []

    async def flaky(run: JobRun) -> None:
        attempts.append(run.attempt)
        raise ConnectionError("Synapse is away")

    async def on_parked(run: JobRun, reason: str) -> None:
        parked.append((run.key, reason))

    queue.kind("send", flaky, max_attempts=3, on_parked=on_parked)
    await queue.enqueue("send", "s1")
    assert await queue.run_due() == 1
    job = await queue.get("s1")
    assert job is not None and job.state == QUEUED
    wait = job.run_at.replace(tzinfo=UTC) - clock.now()
    assert timedelta(seconds=2.4) <= wait <= timedelta(seconds=3.6)
    clock.advance(seconds=2)
    assert await queue.run_due() == 0
    clock.advance(seconds=2)
    assert await queue.run_due() == 1
    clock.advance(seconds=8)
    assert await queue.run_due() == 1
    clock.advance(hours=1)
    assert await queue.run_due() == 0
    assert attempts == [1, 2, 3]
    job = await queue.get("s1")
    assert job is not None and job.state == PARKED
    assert job.last_error == "ConnectionError: Synapse is away"
    assert parked == [("s1", "ConnectionError: Synapse is away")]


async def test_give_up_parks_at_once(queue: JobQueue) -> None:
    """A job whose subject is gone is parked without more tries."""

    async def gone(run: JobRun) -> None:
        raise GiveUp("the case was erased")

    queue.kind("scan", gone)
    await queue.enqueue("scan", "a1")
    await queue.run_due()
    job = await queue.get("a1")
    assert job is not None and job.state == PARKED and job.attempts == 1


async def test_retry_later_is_not_a_failure(queue: JobQueue, clock: FakeClock) -> None:
    """'Not yet' moves the job on without using up an attempt."""
    tries: list[int] = []

    async def not_yet(run: JobRun) -> None:
        tries.append(run.attempt)
        if len(tries) < 3:
            raise RetryLater(timedelta(seconds=30), "clamd is not back")

    queue.kind("scan", not_yet, max_attempts=1)
    await queue.enqueue("scan", "a1")
    for _ in range(3):
        await queue.run_due()
        clock.advance(seconds=30)
    assert tries == [1, 1, 1]
    job = await queue.get("a1")
    assert job is not None and job.state == DONE


async def test_a_crashed_workers_job_is_taken_over_after_its_lease(
    store: Store, clock: FakeClock
) -> None:
    """Worker A claims a job and dies; before the lease ends nobody else takes
    it, after it B runs it; A's late answer changes nothing."""
    a = JobQueue(store.engine, clock=clock, lease=timedelta(minutes=1), owner="a")
    b = JobQueue(store.engine, clock=clock, lease=timedelta(minutes=1), owner="b")
    ran: list[str] = []
    for q in (a, b):
        q.kind("mail", recorder(ran))
    await a.enqueue("mail", "m1")
    held = await a._claim((await a._due_ids(1))[0])
    assert held is not None
    clock.advance(seconds=59)
    assert await b.run_due() == 0
    clock.advance(seconds=2)
    assert await b.run_due() == 1
    await a._finish(held, QUEUED, run_at=clock.now())  # A wakes up too late
    job = await b.get("m1")
    assert ran == ["m1"]
    assert job is not None and job.state == DONE and job.attempts == 2


async def test_two_workers_never_run_one_job_twice(
    store: Store, clock: FakeClock
) -> None:
    """Two queues (as in two bridge processes, each with its own connection
    pool) work off 60 jobs together: each runs exactly once."""
    engine2 = create_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        ran: list[str] = []

        async def slow(run: JobRun) -> None:
            await asyncio.sleep(0.001)
            ran.append(run.key)

        queues = [
            JobQueue(store.engine, clock=clock, owner="p1"),
            JobQueue(engine2, clock=clock, owner="p2"),
        ]
        for q in queues:
            q.kind("deliver", slow)
        for n in range(60):
            await queues[0].enqueue("deliver", f"d{n}")

        async def drain(q: JobQueue) -> int:
            total = 0
            while (n := await q.run_due(limit=5)) or total == 0:
                total += n
                if not n:
                    break
            return total

        counts = await asyncio.gather(*(drain(q) for q in queues))
        assert sorted(ran) == sorted(f"d{n}" for n in range(60))
        assert sum(counts) == 60
    finally:
        await engine2.dispose()


async def test_a_recurring_job_comes_back_at_its_interval(
    queue: JobQueue, clock: FakeClock
) -> None:
    """A tick every 2 s runs once per interval, as one row."""
    ran: list[str] = []
    queue.kind("tick", recorder(ran), every=timedelta(seconds=2))
    await queue.enqueue("tick", "tick")
    assert await queue.run_due() == 1
    assert await queue.run_due() == 0
    clock.advance(seconds=2)
    assert await queue.run_due() == 1
    assert ran == ["tick", "tick"]
    assert (await queue.counts())["queued"] == 1


async def test_the_worker_runs_a_job_as_soon_as_it_is_enqueued(
    store: Store,
) -> None:
    """Started, the worker wakes on enqueue instead of waiting for its poll."""
    queue = JobQueue(store.engine)
    done = asyncio.Event()

    async def handler(run: JobRun) -> None:
        done.set()

    queue.kind("notice", handler)
    queue.start()
    try:
        await asyncio.sleep(0.1)
        await queue.enqueue("notice", "n1")
        await asyncio.wait_for(done.wait(), 2)
    finally:
        await queue.stop()
    job = await queue.get("n1")
    assert job is not None and job.state == DONE


async def test_again_brings_back_work_that_recurs_under_one_key(
    queue: JobQueue, clock: FakeClock
) -> None:
    """'Flush room X' asked for again: a done job is queued anew, a queued one
    becomes due sooner, a running one runs once more right after it ends."""
    ran: list[str] = []
    inside: list[bool] = []

    async def flush(run: JobRun) -> None:
        ran.append(run.key)
        if not inside:
            inside.append(True)
            await queue.enqueue("flush", run.key, again=True)  # new work meanwhile

    queue.kind("flush", flush)
    await queue.enqueue("flush", "room", run_at=clock.now() + timedelta(minutes=5))
    await queue.enqueue("flush", "room", again=True)
    assert await queue.run_due() == 1  # due now, no longer in 5 minutes
    assert await queue.run_due() == 1  # the rerun asked for while it ran
    assert await queue.run_due() == 0
    job = await queue.get("room")
    assert job is not None and job.state == DONE
    await queue.enqueue("flush", "room", again=True)
    assert await queue.run_due() == 1
    assert ran == ["room", "room", "room"]
