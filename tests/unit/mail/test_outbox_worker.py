"""The outbox's worker task in real time: woken by enqueue, riding out an SMTP
outage, and stopping without cutting a send short."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.mail.backends import SmtpBackend
from bridge.mail.outbox import Outbox
from tests.unit.mail.samples import offline_mail, settings
from tests.unit.mail.smtp_server import SmtpServer


def _outbox(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path, **changes: object
) -> Outbox:
    backend = SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2)
    return Outbox(db, settings(tmp_path, **changes), backend)


async def test_worker_sends_after_wake_and_stops_cleanly(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """With the worker running, an enqueued mail goes out at once; stop() ends
    the named task promptly."""
    outbox = _outbox(db, smtp, tmp_path)
    await outbox.start()
    try:
        task = outbox._task
        assert task is not None and task.get_name() == "mail-outbox"
        await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
        await _until(lambda: _count(smtp, 1))
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await outbox.stop()
        assert loop.time() - started < 1
    assert task.done() and not task.cancelled()
    assert len(smtp.received) == 1


async def test_worker_delivers_each_mail_once_after_an_outage(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Real time, real worker: mails enqueued while the server is down arrive
    exactly once after it comes back (counted at the server)."""
    await smtp.stop()
    outbox = _outbox(db, smtp, tmp_path, backoff_seconds=0.05, max_attempts=50)
    await outbox.start()
    try:
        for n in range(1, 6):
            await outbox.enqueue(offline_mail(n), dedup_key=f"offline:c{n}")
        await _until(lambda: _all_tried(outbox, 2))
        await smtp.start()
        await _until(lambda: _count(smtp, 5))
        await asyncio.sleep(0.5)  # time for a wrong second delivery to show up
    finally:
        await outbox.stop()
    ids = smtp.handler.message_ids()
    assert len(ids) == 5 and len(set(ids)) == 5
    assert (await outbox.counts())["sent"] == 5


async def test_stop_lets_the_mail_in_flight_finish(
    db: AsyncEngine, smtp: SmtpServer, tmp_path: Path
) -> None:
    """stop() during a slow send waits for the server's answer, so the mail is
    recorded as sent instead of being left 'sending' (and sent again later)."""
    smtp.handler.data_delay = 0.5
    outbox = _outbox(db, smtp, tmp_path)
    await outbox.start()
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await _until(lambda: _state_is(outbox, "offline:c1", "sending"))
    await outbox.stop()
    assert await _state_is(outbox, "offline:c1", "sent")
    assert len(smtp.received) == 1


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
