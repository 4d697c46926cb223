"""One durable job queue for every retry and timer (the role Synapse's task
scheduler plays): deliveries, scans, mails, notices, reminders, purges, ticks.

A job is a row in ``jobs`` (:class:`bridge.db.models.Job`): its ``kind`` names
the handler, its ``key`` makes enqueueing idempotent, ``run_at`` says when it is
due. A worker claims a due job with one conditional ``UPDATE`` (so two workers,
in one process or several, never both get it) and holds it for ``lease``; if the
worker dies, the lease runs out and another one takes the job over. Handlers
must therefore be idempotent — they are, in this product, because every send
and mail carries a key of its own.

What becomes of a job after its handler ran:

- returned → ``done`` (or, for a recurring kind, ``queued`` again at the next
  interval);
- raised :class:`RetryLater` → ``queued`` at the time it names, not counted as
  a failure (e.g. "Synapse is not back yet");
- raised anything else → ``queued`` after :func:`backoff` (the one rule: base ·
  2^(attempt−1), capped, spread ±20 %), or ``parked`` once the kind's
  ``max_attempts`` are used up or the error is :class:`GiveUp`; the kind's
  ``on_parked`` is told (e.g. to alert the admin room).

Done and parked jobs are kept for ``KEEP_FINISHED`` so that a key enqueued again
(a retried request, a handler run twice) does not do the work twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, case, delete, func, literal, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import as_utc, utcnow
from .db.models import Job
from .db.tables import TableStore
from .retries import GiveUp, RetryLater, backoff

__all__ = ["GiveUp", "JobQueue", "JobRun", "RetryLater", "backoff"]

log = logging.getLogger("buergerchat.jobs")

QUEUED, RUNNING, DONE, PARKED = "queued", "running", "done", "parked"
KEEP_FINISHED = timedelta(days=7)
#: How often a worker looks even when nobody woke it (jobs another process
#: enqueued, leases that ran out).
POLL_SECONDS = 5.0
BATCH = 20

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class JobRun:
    """What a handler gets: the job's identity, payload and how often it ran."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempt: int
    case_id: str | None


Handler = Callable[[JobRun], Awaitable[None]]
ParkedHook = Callable[[JobRun, str], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    handler: Handler
    max_attempts: int | None
    base: timedelta
    cap: timedelta
    #: Recurring: queued again this long after each run instead of done.
    every: timedelta | None
    on_parked: ParkedHook | None
    #: How long a worker holds a job: a run is cut off before it ends, and a
    #: dead worker's job is taken over after it.
    lease: timedelta


class JobQueue(TableStore):
    """Enqueue jobs and work them off; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utcnow,
        lease: timedelta = timedelta(seconds=60),
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(engine)
        self.clock = clock
        self.lease = lease
        self.owner = owner or f"w-{secrets.token_hex(6)}"
        self._rng = rng or random.Random()
        self._kinds: dict[str, Kind] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pruned_at: datetime | None = None

    # --- declaring and enqueueing --------------------------------------------

    def kind(
        self,
        name: str,
        handler: Handler,
        *,
        max_attempts: int | None = None,
        base: timedelta = timedelta(seconds=3),
        cap: timedelta = timedelta(minutes=10),
        every: timedelta | None = None,
        on_parked: ParkedHook | None = None,
        lease: timedelta | None = None,
    ) -> None:
        """Register the handler of jobs of kind ``name`` (once per kind).
        ``max_attempts`` None retries for ever (with backoff up to ``cap``);
        ``lease`` defaults to the queue's."""
        if name in self._kinds:
            raise ValueError(f"job kind {name!r} is registered twice")
        self._kinds[name] = Kind(
            handler, max_attempts, base, cap, every, on_parked, lease or self.lease
        )

    async def enqueue(
        self,
        kind: str,
        key: str,
        payload: dict[str, Any] | None = None,
        *,
        run_at: datetime | None = None,
        case_id: str | None = None,
        again: bool = False,
    ) -> tuple[Job, bool]:
        """Store a job; returns (job, created). A key enqueued before returns the
        first job unchanged (whatever its state), so work is never done twice.

        ``again`` is for work that recurs under one key ("flush room X"): a
        finished job of the key is queued anew, a queued one is due no later
        than ``run_at``, a running one runs once more when it ends."""
        if again and await self._again(key, run_at or self.clock()):
            existing = await self.get(key)
            assert existing is not None
            self.wake()
            return existing, False
        job = Job(
            kind=kind,
            key=key,
            payload=payload or {},
            state=QUEUED,
            run_at=run_at or self.clock(),
            attempts=0,
            case_id=case_id,
            created_at=self.clock(),
        )
        try:
            async with self.session.begin() as s:
                s.add(job)
        except IntegrityError:
            async with self.session() as s:
                existing = await s.scalar(select(Job).where(Job.key == key))
            if existing is None:
                raise
            return existing, False
        self.wake()
        return job, True

    async def _again(self, key: str, run_at: datetime) -> bool:
        """Bring an existing job of ``key`` back; False if there is none. Each
        update holds only if the job is still in the state read (a run may end,
        or a worker claim it, in between); otherwise read again."""
        while True:
            async with self.session.begin() as s:
                found = (
                    await s.execute(select(Job.id, Job.state).where(Job.key == key))
                ).first()
                if found is None:
                    return False
                job_id, state = found
                if state in (DONE, PARKED):
                    values: dict[str, Any] = {
                        "state": QUEUED,
                        "run_at": run_at,
                        "attempts": 0,
                        "last_error": None,
                        "finished_at": None,
                    }
                elif state == QUEUED:
                    when = literal(run_at, DateTime(timezone=True))
                    values = {
                        "run_at": case((Job.run_at > when, when), else_=Job.run_at)
                    }
                else:  # running: once more when this run ends, at the earliest
                    when = literal(run_at, DateTime(timezone=True))
                    values = {
                        "rerun_at": case(
                            (Job.rerun_at.is_(None), when),
                            (Job.rerun_at > when, when),
                            else_=Job.rerun_at,
                        )
                    }
                moved = await s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == state)
                    .values(**values)
                )
                if getattr(moved, "rowcount", 0) == 1:
                    return True

    async def run_soon(self, key: str) -> bool:
        """A queued job is due now (what it waited for is back). False if there
        is no such queued job."""
        async with self.session.begin() as s:
            done = await s.execute(
                update(Job)
                .where(Job.key == key, Job.state == QUEUED)
                .values(run_at=self.clock())
            )
        self.wake()
        return bool(getattr(done, "rowcount", 0))

    async def run_kind_soon(self, kind: str) -> None:
        """Every queued job of ``kind`` is due now (e.g. clamd is back)."""
        async with self.session.begin() as s:
            await s.execute(
                update(Job)
                .where(Job.kind == kind, Job.state == QUEUED)
                .values(run_at=self.clock())
            )
        self.wake()

    async def replace_payload(self, key: str, payload: dict[str, Any]) -> None:
        """A handler's own job keeps less once its work is done (e.g. an
        erasure request forgets the address it was given)."""
        async with self.session.begin() as s:
            await s.execute(update(Job).where(Job.key == key).values(payload=payload))

    async def get(self, key: str) -> Job | None:
        async with self.session() as s:
            return await s.scalar(select(Job).where(Job.key == key))

    def wake(self) -> None:
        self._wake.set()

    # --- working off -------------------------------------------------------------

    async def run_due(self, limit: int = BATCH) -> int:
        """Claim up to ``limit`` due jobs and run them one after another; returns
        how many ran. The worker calls this; tests call it with a fake clock."""
        ran = 0
        for job_id in await self._due_ids(limit):
            run = await self._claim(job_id)
            if run is None:
                continue  # another worker was quicker
            await self._run(run)
            ran += 1
        return ran

    async def _due_ids(self, limit: int) -> list[int]:
        now = self.clock()
        async with self.session() as s:
            rows = await s.scalars(
                select(Job.id)
                .where(
                    or_(
                        (Job.state == QUEUED) & (Job.run_at <= now),
                        (Job.state == RUNNING) & (Job.lease_until < now),
                    ),
                    Job.kind.in_(list(self._kinds)),
                )
                .order_by(Job.run_at, Job.id)
                .limit(limit)
            )
            return list(rows.all())

    async def _claim(self, job_id: int) -> JobRun | None:
        now = self.clock()
        async with self.session.begin() as s:
            kind_name = await s.scalar(select(Job.kind).where(Job.id == job_id))
            kind = self._kinds.get(str(kind_name))
            if kind is None:
                return None
            claimed = await s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    or_(
                        (Job.state == QUEUED) & (Job.run_at <= now),
                        (Job.state == RUNNING) & (Job.lease_until < now),
                    ),
                )
                .values(
                    state=RUNNING,
                    lease_owner=self.owner,
                    lease_until=now + kind.lease,
                    attempts=Job.attempts + 1,
                )
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            job = await s.get(Job, job_id)
            assert job is not None
            return JobRun(
                job.id, job.kind, job.key, dict(job.payload), job.attempts, job.case_id
            )

    async def _run(self, run: JobRun) -> None:
        kind = self._kinds[run.kind]
        try:
            await asyncio.wait_for(
                kind.handler(run), (kind.lease * 0.9).total_seconds()
            )
        except asyncio.CancelledError:
            await self._finish(run, QUEUED, run_at=self.clock(), undo_attempt=True)
            raise
        except RetryLater as later:
            await self._finish(
                run, QUEUED, run_at=self.clock() + later.delay, undo_attempt=True
            )
        except Exception as e:
            await self._failed(run, kind, e)
        else:
            if kind.every is not None:
                await self._finish(run, QUEUED, run_at=self.clock() + kind.every)
            else:
                await self._finish(run, DONE)

    async def _failed(self, run: JobRun, kind: Kind, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"[:2000]
        out_of_tries = (
            kind.max_attempts is not None and run.attempt >= kind.max_attempts
        )
        if isinstance(error, GiveUp) or out_of_tries:
            log.warning(
                "job %s parked after %d attempt(s): %s", run.key, run.attempt, reason
            )
            await self._finish(run, PARKED, error=reason)
            if kind.on_parked is not None:
                try:
                    await kind.on_parked(run, reason)
                except Exception:
                    log.exception("telling about parked job %s failed", run.key)
            return
        delay = backoff(
            run.attempt, base=kind.base, cap=kind.cap, spread=self._rng.random()
        )
        log.info(
            "job %s failed (%s); again in %.0f s",
            run.key,
            reason,
            delay.total_seconds(),
        )
        await self._finish(run, QUEUED, run_at=self.clock() + delay, error=reason)

    async def _finish(
        self,
        run: JobRun,
        state: str,
        *,
        run_at: datetime | None = None,
        error: str | None = None,
        undo_attempt: bool = False,
    ) -> None:
        """Record the outcome, if this worker still holds the job (a lease that
        ran out may have passed it on; then the new holder decides)."""
        values: dict[str, Any] = {
            "state": state,
            "lease_owner": None,
            "lease_until": None,
        }
        if run_at is not None:
            values["run_at"] = run_at
        if error is not None:
            values["last_error"] = error
        if state in (DONE, PARKED):
            values["finished_at"] = self.clock()
        if undo_attempt:
            values["attempts"] = Job.attempts - 1
        if state == DONE or (state == QUEUED and not undo_attempt):
            # Asked for again while it ran: once more, at the time asked for.
            when = DateTime(timezone=True)
            asked = Job.rerun_at.is_not(None)
            values["state"] = case((asked, QUEUED), else_=state)
            values["run_at"] = case(
                (asked, Job.rerun_at),
                else_=literal(run_at, when) if run_at is not None else Job.run_at,
            )
            values["finished_at"] = case(
                (asked, null()), else_=literal(values.get("finished_at"), when)
            )
            values["rerun_at"] = None
        async with self.session.begin() as s:
            await s.execute(
                update(Job)
                .where(Job.id == run.id, Job.lease_owner == self.owner)
                .values(**values)
            )

    # --- the worker --------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._work(), name="job-queue")

    async def stop(self) -> None:
        """Let the job in hand finish, then stop."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            except TimeoutError:
                self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _work(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                ran = await self.run_due()
                await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the job queue failed to look for work; again in 2 s")
                await asyncio.sleep(2)
                continue
            if ran or self._stopping:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), await self._idle_seconds())
            except TimeoutError:
                pass

    async def _idle_seconds(self) -> float:
        """Until the next queued job is due (at most ``POLL_SECONDS``)."""
        async with self.session() as s:
            nxt = await s.scalar(
                select(func.min(Job.run_at)).where(
                    Job.state == QUEUED, Job.kind.in_(list(self._kinds))
                )
            )
        if nxt is None:
            return POLL_SECONDS
        wait = (as_utc(nxt) - self.clock()).total_seconds()
        return max(0.0, min(wait, POLL_SECONDS))

    async def _prune(self) -> None:
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < timedelta(hours=1):
            return
        self._pruned_at = now
        async with self.session.begin() as s:
            await s.execute(
                delete(Job).where(
                    Job.state.in_((DONE, PARKED)), Job.finished_at < now - KEEP_FINISHED
                )
            )

    # --- what operators see ------------------------------------------------------

    async def counts(self) -> dict[str, Any]:
        """Queued, running and parked jobs and how late the oldest due one is."""
        now = self.clock()
        async with self.session() as s:
            by_state = dict(
                (
                    await s.execute(select(Job.state, func.count()).group_by(Job.state))
                ).all()
            )
            oldest = await s.scalar(
                select(func.min(Job.run_at)).where(
                    Job.state == QUEUED, Job.run_at <= now
                )
            )
        lag = (now - as_utc(oldest)).total_seconds() if oldest else 0.0
        return {
            "queued": int(by_state.get(QUEUED, 0)),
            "running": int(by_state.get(RUNNING, 0)),
            "parked": int(by_state.get(PARKED, 0)),
            "lag_seconds": round(lag, 1),
        }
