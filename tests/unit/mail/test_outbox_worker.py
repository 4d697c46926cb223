"""The outbox on the job queue in real time: a mail is a job, sent at once,
riding out an SMTP outage, shared by two processes, and not cut short by a
stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.jobs import JobQueue
from bridge.mail.backends import SmtpBackend
from bridge.mail.outbox import Outbox
from tests.unit.mail.samples import offline_mail, settings
from tests.unit.mail.smtp_server import SmtpServer


def _outbox(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path, **changes: object
) -> tuple[Outbox, JobQueue]:
    """An outbox whose mails are jobs of a job queue (as in the bridge)."""
    backend = SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2)
    jobs = JobQueue(db)
    return Outbox(db, settings(tmp_path, **changes), backend, jobs=jobs), jobs


async def test_the_job_queue_sends_at_once_and_stops_cleanly(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """With the job queue running, an enqueued mail goes out at once (its
    mail.send job was written with it); stop() ends the worker promptly."""
    outbox, jobs = _outbox(db, smtp, tmp_path)
    jobs.start()
    try:
        row, _ = await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
        await _until(lambda: _count(smtp, 1))
        await _until(lambda: _job_state(jobs, f"mail:{row.id}", "done"))
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await jobs.stop()
        assert loop.time() - started < 1
    assert len(smtp.received) == 1


async def test_each_mail_arrives_once_after_an_outage(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Real time, real worker: mails enqueued while the server is down arrive
    exactly once after it comes back (counted at the server)."""
    await smtp.stop()
    outbox, jobs = _outbox(db, smtp, tmp_path, backoff_seconds=0.05, max_attempts=50)
    jobs.start()
    try:
        for n in range(1, 6):
            await outbox.enqueue(offline_mail(n), dedup_key=f"offline:c{n}")
        await _until(lambda: _all_tried(outbox, 2))
        await smtp.start()
        await _until(lambda: _count(smtp, 5))
        await asyncio.sleep(0.5)  # time for a wrong second delivery to show up
    finally:
        await jobs.stop()
    ids = smtp.handler.message_ids()
    assert len(ids) == 5 and len(set(ids)) == 5
    assert (await outbox.counts())["sent"] == 5


async def test_two_processes_send_each_mail_once(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Two bridge processes (two job queues, two outboxes on one database) share
    the mails: 20 arrive, each once."""
    first, jobs_a = _outbox(db, smtp, tmp_path)
    _, jobs_b = _outbox(db, smtp, tmp_path)
    jobs_a.start()
    jobs_b.start()
    try:
        for n in range(1, 21):
            await first.enqueue(offline_mail(n), dedup_key=f"offline:c{n}")
        await _until(lambda: _count(smtp, 20))
        await asyncio.sleep(0.5)
    finally:
        await jobs_a.stop()
        await jobs_b.stop()
    ids = smtp.handler.message_ids()
    assert len(ids) == 20 and len(set(ids)) == 20


async def test_a_mail_without_its_job_gets_one_at_recover(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """A mail queued by an older release (no job) is sent after recover()."""
    plain = Outbox(
        db,
        settings(tmp_path),
        SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2),
    )
    await plain.enqueue(offline_mail(), dedup_key="offline:old")
    outbox, jobs = _outbox(db, smtp, tmp_path)
    assert await outbox.recover() == 1
    jobs.start()
    try:
        await _until(lambda: _count(smtp, 1))
    finally:
        await jobs.stop()


async def test_stop_lets_the_mail_in_flight_finish(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """stop() during a slow send waits for the server's answer, so the mail is
    recorded as sent instead of being left 'sending' (and sent again later)."""
    smtp.handler.data_delay = 0.5
    outbox, jobs = _outbox(db, smtp, tmp_path)
    jobs.start()
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await _until(lambda: _state_is(outbox, "offline:c1", "sending"))
    await jobs.stop()
    assert await _state_is(outbox, "offline:c1", "sent")
    assert len(smtp.received) == 1


async def _job_state(jobs: JobQueue, key: str, state: str) -> bool:
    job = await jobs.get(key)
    return job is not None and job.state == state


async def _until(check: Callable[[], Awaitable[bool] | bool]) -> None:
    """Wait (at most 10 s) until ``check`` holds."""
    try:
        async with asyncio.timeout(10):
            while True:
                result = check()
                if isinstance(result, Awaitable):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError("condition not reached within 10 s") from None


def _count(smtp: SmtpServer, n: int) -> bool:
    return len(smtp.received) >= n


async def _state_is(outbox: Outbox, key: str, state: str) -> bool:
    row = await outbox.get(key)
    return row is not None and row.state == state


async def _all_tried(outbox: Outbox, attempts: int) -> bool:
    rows = await outbox.store.all()
    return bool(rows) and all(r.attempts >= attempts for r in rows)
