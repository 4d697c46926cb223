"""The durable outbox against a real SMTP server, on SQLite and PostgreSQL: mails
arrive once, survive a server outage, back off, and are parked when hopeless."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bridge.clock import as_utc
from bridge.db.models import Case
from bridge.mail.backends import MaildirBackend, SmtpBackend
from bridge.mail.models import OutboxMail
from bridge.mail.outbox import Outbox, retry_delay
from tests.unit.mail.conftest import FakeClock
from tests.unit.mail.samples import INBOX, SENDER, offline_mail, settings
from tests.unit.mail.smtp_server import SmtpServer


class Parked:
    """Records on_parked calls, like the admin-room alert will."""

    def __init__(self) -> None:
        self.calls: list[tuple[OutboxMail, str]] = []

    async def __call__(self, mail: OutboxMail, reason: str) -> None:
        self.calls.append((mail, reason))


OutboxFactory = Callable[..., Outbox]


@pytest.fixture
def parked() -> Parked:
    return Parked()


@pytest.fixture
def make_outbox(
    db: AsyncEngine, smtp: SmtpServer, clock: FakeClock, parked: Parked, tmp_path: Path
) -> OutboxFactory:
    def make(**changes: object) -> Outbox:
        backend = SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2)
        return Outbox(
            db,
            settings(tmp_path, **changes),
            backend,
            clock=clock,
            on_parked=parked,
            rng=random.Random(4),
        )

    return make


async def _row(outbox: Outbox, key: str) -> OutboxMail:
    row = await outbox.get(key)
    assert row is not None
    return row


async def test_mail_arrives_with_content_and_headers(
    make_outbox: OutboxFactory, smtp: SmtpServer
) -> None:
    """An enqueued department mail arrives with subject, Reply-To, umlauts and the
    Message-ID stored at enqueue; the row is marked sent."""
    outbox = make_outbox()
    row, created = await outbox.enqueue(
        offline_mail(), dedup_key="offline:c1", case_id=None
    )
    assert created and row.message_id.startswith("<") and row.recipients == [INBOX]
    assert await outbox.flush() == 1
    [got] = smtp.received
    msg = got.message
    assert got.rcpt_tos == [INBOX] and got.mail_from == SENDER.address
    assert (
        msg["Subject"]
        == "[BC-2026-000001] Anwohnerparken – Nachricht aus dem Bürgerchat"
    )
    assert msg["Reply-To"].addresses[0].addr_spec == "juergen@example.org"
    assert msg["Message-ID"] == row.message_id
    assert msg["Date"].datetime == datetime(2026, 3, 14, 17, 30, tzinfo=UTC)
    assert "Grüße aus der Hauptstraße" in msg.get_content()
    sent = await _row(outbox, "offline:c1")
    assert (sent.state, sent.attempts) == ("sent", 1)
    assert as_utc(sent.sent_at) == datetime(2026, 3, 14, 17, 30, tzinfo=UTC)  # type: ignore[arg-type]


async def test_same_dedup_key_is_stored_and_sent_once(
    make_outbox: OutboxFactory, smtp: SmtpServer
) -> None:
    """Enqueuing the same logical mail twice (also after sending) sends it once."""
    outbox = make_outbox()
    first, created1 = await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    second, created2 = await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    assert (created1, created2) == (True, False)
    assert second.id == first.id and second.message_id == first.message_id
    await outbox.flush()
    _, created3 = await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.flush()
    assert created3 is False
    assert len(smtp.received) == 1
    assert (await outbox.counts())["sent"] == 1


async def test_server_down_nothing_lost_each_mail_once_after_return(
    make_outbox: OutboxFactory, smtp: SmtpServer, clock: FakeClock
) -> None:
    """With the SMTP server stopped, mails wait with growing backoff; once it is
    back every mail arrives exactly once, with its original Message-ID."""
    outbox = make_outbox(max_attempts=8)
    rows = [
        (await outbox.enqueue(offline_mail(n), dedup_key=f"offline:c{n}"))[0]
        for n in (1, 2, 3)
    ]
    await smtp.stop()

    waits: list[float] = []
    for _ in range(3):
        assert await outbox.flush() == 3
        assert await outbox.flush() == 0  # nothing due before the backoff ends
        queued = await outbox.store.all()
        assert {r.state for r in queued} == {"queued"}
        assert all("not reachable" in (r.last_error or "") for r in queued)
        due = [(as_utc(r.next_attempt_at) - clock()).total_seconds() for r in queued]
        waits.append(due[0])
        clock.advance(max(due))
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72 and 96 <= waits[2] <= 144

    await smtp.start()
    clock.advance(300)
    assert await outbox.flush() == 3
    assert sorted(smtp.handler.message_ids()) == sorted(r.message_id for r in rows)
    assert await outbox.flush() == 0
    clock.advance(3600)
    assert await outbox.flush() == 0
    assert len(smtp.received) == 3
    assert (await outbox.counts())["sent"] == 3
    assert {(await _row(outbox, f"offline:c{n}")).attempts for n in (1, 2, 3)} == {4}


async def test_5xx_parks_the_mail_and_alerts(
    make_outbox: OutboxFactory, smtp: SmtpServer, parked: Parked, clock: FakeClock
) -> None:
    """A 550 from the server parks the mail at once and calls on_parked."""
    smtp.handler.rcpt_reply = "550 5.1.1 Mailbox unknown"
    outbox = make_outbox()
    outcomes: list[str] = []
    outbox.on_outcome = outcomes.append
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.flush()
    row = await _row(outbox, "offline:c1")
    assert (row.state, row.attempts) == ("parked", 1)
    assert outcomes == ["parked"]  # /metrics: buergerchat_outcomes_total
    [(mail, reason)] = parked.calls
    assert mail.id == row.id and mail.state == "parked"
    assert "550 5.1.1 Mailbox unknown" in reason
    smtp.handler.rcpt_reply = None
    clock.advance(86400)
    assert await outbox.flush() == 0
    assert smtp.received == []


async def test_4xx_is_retried_and_then_delivered(
    make_outbox: OutboxFactory, smtp: SmtpServer, parked: Parked, clock: FakeClock
) -> None:
    """A 451 keeps the mail queued for a later try, which then delivers it."""
    smtp.handler.rcpt_reply = "451 4.7.1 Greylisted"
    outbox = make_outbox()
    outcomes: list[str] = []
    outbox.on_outcome = outcomes.append
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.flush()
    row = await _row(outbox, "offline:c1")
    assert (row.state, row.attempts) == ("queued", 1)
    assert "451 4.7.1 Greylisted" in (row.last_error or "")
    smtp.handler.rcpt_reply = None
    clock.advance(60)
    assert await outbox.flush() == 1
    assert len(smtp.received) == 1 and parked.calls == []
    assert (await _row(outbox, "offline:c1")).state == "sent"
    assert outcomes == ["retried", "sent"]


async def test_after_max_attempts_the_mail_is_parked(
    make_outbox: OutboxFactory, smtp: SmtpServer, parked: Parked, clock: FakeClock
) -> None:
    """Temporary failures stop after max_attempts: parked, alert with the cause."""
    await smtp.stop()
    outbox = make_outbox(max_attempts=3)
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    for _ in range(5):
        await outbox.flush()
        clock.advance(3600)
    row = await _row(outbox, "offline:c1")
    assert (row.state, row.attempts) == ("parked", 3)
    [(_, reason)] = parked.calls
    assert reason.startswith("gave up after 3 attempts: ")
    assert "not reachable" in reason


async def test_parked_mail_can_be_requeued(
    make_outbox: OutboxFactory, smtp: SmtpServer, clock: FakeClock
) -> None:
    """After the cause is fixed, requeue() sends a parked mail after all."""
    smtp.handler.rcpt_reply = "554 5.7.1 Relay denied"
    outbox = make_outbox()
    row, _ = await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.flush()
    smtp.handler.rcpt_reply = None
    assert await outbox.requeue(row.id) is True
    assert await outbox.requeue(row.id) is False  # only parked mails
    assert await outbox.flush() == 1
    assert len(smtp.received) == 1


async def test_stale_sending_row_is_retried_after_its_lease(
    make_outbox: OutboxFactory, smtp: SmtpServer, clock: FakeClock
) -> None:
    """A mail left 'sending' by a crashed worker is sent once its lease runs out,
    not before, and then exactly once."""
    crashed = make_outbox()
    await crashed.enqueue(offline_mail(), dedup_key="offline:c1")
    claimed = await crashed.store.claim_next(clock(), crashed.lease)
    assert claimed is not None and claimed.state == "sending"

    restarted = make_outbox()
    assert await restarted.flush() == 0
    clock.advance(restarted.lease.total_seconds() + 1)
    assert await restarted.flush() == 1
    assert len(smtp.received) == 1
    row = await _row(restarted, "offline:c1")
    assert (row.state, row.attempts) == ("sent", 2)
    # The crashed worker coming back late cannot overwrite the newer outcome.
    assert await crashed.store.finish(claimed, state="queued") is False


async def test_enqueue_joins_the_callers_transaction(
    db: AsyncEngine, make_outbox: OutboxFactory
) -> None:
    """Enqueued inside a transaction that rolls back, the mail is gone too."""
    outbox = make_outbox()
    session = async_sessionmaker(db)
    async with session() as s:
        async with s.begin():
            _, created = await outbox.enqueue(offline_mail(), dedup_key="k", session=s)
            assert created
            await s.rollback()
    assert await outbox.get("k") is None
    async with session.begin() as s:
        await outbox.enqueue(offline_mail(), dedup_key="k", session=s)
    assert await outbox.get("k") is not None


async def test_erasing_a_case_erases_its_mails(
    db: AsyncEngine, make_outbox: OutboxFactory, clock: FakeClock
) -> None:
    """Deleting a case deletes its queued and sent mails (FK cascade); the
    outbox's own erase_case does the same."""
    session = async_sessionmaker(db)
    async with session.begin() as s:
        for case_id in ("c1", "c2"):
            s.add(
                Case(
                    case_id=case_id,
                    reference=f"BC-{case_id}",
                    department="buergerbuero",
                    state="offline",
                    language="de",
                    ghost_mxid=f"@bc_{case_id}:x",
                    created_at=clock(),
                )
            )
    outbox = make_outbox()
    await outbox.enqueue(offline_mail(1), dedup_key="a", case_id="c1")
    await outbox.enqueue(offline_mail(2), dedup_key="b", case_id="c1")
    await outbox.enqueue(offline_mail(3), dedup_key="c", case_id="c2")
    await outbox.flush()
    async with session.begin() as s:
        await s.execute(delete(Case).where(Case.case_id == "c1"))
    assert await outbox.get("a") is None and await outbox.get("b") is None
    assert await outbox.erase_case("c2") == 1
    assert await outbox.get("c") is None


async def test_bcc_is_envelope_only_and_headers_are_filled_once(
    make_outbox: OutboxFactory, smtp: SmtpServer, clock: FakeClock
) -> None:
    """Bcc recipients get the mail without a Bcc header; Date and Message-ID are
    set at enqueue and stay the same on the retry."""
    msg = offline_mail()
    msg["Bcc"] = "archiv@hockenheim.de"
    del msg["Date"], msg["Message-ID"]
    smtp.handler.rcpt_reply = "421 4.3.2 Shutting down"
    outbox = make_outbox()
    row, _ = await outbox.enqueue(msg, dedup_key="offline:c1")
    assert row.recipients == [INBOX, "archiv@hockenheim.de"]
    assert row.message_id.endswith("@hockenheim.de>")
    assert msg["Message-ID"] is None  # the caller's message is left alone
    await outbox.flush()
    smtp.handler.rcpt_reply = None
    clock.advance(600)
    await outbox.flush()
    [got] = smtp.received
    assert got.rcpt_tos == [INBOX, "archiv@hockenheim.de"]
    assert b"archiv@" not in got.data and got.message["Bcc"] is None
    assert got.message["Message-ID"] == row.message_id
    assert got.message["Date"].datetime == datetime(2026, 3, 14, 17, 30, tzinfo=UTC)


async def test_a_failing_alert_does_not_unpark_or_crash(
    db: AsyncEngine, smtp: SmtpServer, clock: FakeClock, tmp_path: Path
) -> None:
    """If on_parked itself fails, the mail stays parked and the outbox goes on."""

    async def broken_alert(mail: OutboxMail, reason: str) -> None:
        raise RuntimeError("Matrix is down")

    smtp.handler.rcpt_reply = "550 5.1.1 Mailbox unknown"
    outbox = Outbox(
        db,
        settings(tmp_path),
        SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2),
        clock=clock,
        on_parked=broken_alert,
    )
    await outbox.enqueue(offline_mail(1), dedup_key="a")
    await outbox.enqueue(offline_mail(2), dedup_key="b")
    assert await outbox.flush() == 2
    assert (await outbox.counts())["parked"] == 2


async def test_outbox_with_maildir_backend(
    db: AsyncEngine, clock: FakeClock, tmp_path: Path
) -> None:
    """The embedded default: a flushed mail lands in the Maildir, once."""
    import mailbox

    outbox = Outbox(
        db,
        settings(tmp_path, backend="maildir"),
        MaildirBackend(tmp_path / "mail"),
        clock=clock,
    )
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.enqueue(offline_mail(), dedup_key="offline:c1")
    await outbox.flush()
    await outbox.flush()
    [message] = list(mailbox.Maildir(tmp_path / "mail", create=False))
    assert message["X-Envelope-To"] == INBOX
    assert "BC-2026-000001" in str(message["Subject"])


def test_retry_delay_doubles_with_bounded_jitter() -> None:
    """Backoff doubles per failure, stays within ±20 %, and is capped at 6 hours."""
    assert retry_delay(1, 30, 0.5) == timedelta(seconds=30)
    assert retry_delay(2, 30, 0.0) == timedelta(seconds=48)
    assert retry_delay(3, 30, 0.999999) < timedelta(seconds=144)
    assert retry_delay(40, 30, 0.5) == timedelta(hours=6)


async def test_outbox_accepts_the_bridges_sessionmaker(
    db: AsyncEngine, clock: FakeClock, tmp_path: Path
) -> None:
    """Given the bridge's sessionmaker instead of an engine, the outbox works the
    same, and its rows stay readable after their session closed."""
    outbox = Outbox(
        async_sessionmaker(db),  # expire_on_commit=True, as SQLAlchemy defaults
        settings(tmp_path, backend="maildir"),
        MaildirBackend(tmp_path / "mail"),
        clock=clock,
    )
    row, created = await outbox.enqueue(offline_mail(), dedup_key="k")
    assert created and row.recipients == [INBOX] and row.state == "queued"
    with pytest.raises(TypeError, match="AsyncEngine"):
        Outbox(async_sessionmaker(), settings(tmp_path), MaildirBackend(tmp_path))
