"""The durable mail outbox: mails wait in the database until a server took them.

``enqueue()`` stores the finished message (idempotent by dedup key) and, in the
same transaction, a ``mail.send`` job of the durable job queue (bridge.jobs),
whose worker sends it — in any bridge process, one at a time per mail:

- before sending, the row moves to ``sending`` with a lease (``next_attempt_at`` =
  now + the backend's deadline + a margin) and one more attempt;
- accepted → ``sent``;
- server down, connection refused, timeout, 4xx → back to ``queued`` with
  exponential backoff and jitter, until ``max_attempts``;
- a 5xx answer about the mail, or ``max_attempts`` used up → ``parked``, and
  ``on_parked(mail, reason)`` is called (the bridge alerts the admin room).

The mail row keeps the mail's own attempts, lease and backoff (its
``next_attempt_at``); the job only says "look at mail N then" and comes back at
that time (``RetryLater``). ``recover()`` gives every waiting mail its job (mails
an older release queued, or a job pruned too early). Without a job queue (unit
tests, the command line), :meth:`Outbox.flush` sends what is due directly.

Delivery is at least once, never knowingly twice. The one gap: the server accepted
the mail, and the process died (or lost the database) before ``sent`` was written.
After the lease runs out, the mail is sent again - byte for byte the same, with the
same ``Message-ID``, so receiving servers and mail clients that suppress duplicates
by Message-ID (Gmail, Dovecot's ``duplicate`` Sieve test, most ticket systems) show
it once. A clean ``stop()`` never cuts a send short, so this needs a crash.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bridge.clock import as_utc, utcnow
from bridge.db.models import Job
from bridge.jobs import JobQueue, JobRun, RetryLater, backoff
from bridge.mail.backends import DeliveryError, MailBackend, TemporaryFailure
from bridge.mail.models import PARKED, QUEUED, SENDING, SENT, OutboxMail
from bridge.mail.settings import MailSettings
from bridge.mail.store import OutboxStore

log = logging.getLogger("buergerchat.mail")

ParkedCallback = Callable[[OutboxMail, str], Awaitable[None]]

MAX_BACKOFF = timedelta(hours=6)
LEASE_MARGIN = timedelta(seconds=60)
ALERT_TIMEOUT_SECONDS = 30.0
#: One job per mail: "look at mail N" (bridge.jobs).
SEND_JOB = "mail.send"


def retry_delay(attempt: int, initial: float, fraction: float) -> timedelta:
    """Backoff after the ``attempt``-th failure: the job queue's one rule
    (initial·2^(attempt-1), capped at six hours, spread by ±20 % with
    ``fraction`` in [0, 1)) so mails queued together do not all retry at once."""
    return backoff(
        attempt, base=timedelta(seconds=initial), cap=MAX_BACKOFF, spread=fraction
    )


def recipients_of(message: EmailMessage) -> list[str]:
    """The envelope recipients: every address in To, Cc and Bcc, once each."""
    fields = [str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
    seen: dict[str, None] = {}
    for _, address in getaddresses(fields):
        if address:
            seen.setdefault(address, None)
    return list(seen)


class Outbox:
    """Owns the outbox worker; see the module docstring for the life of a mail."""

    def __init__(
        self,
        db: AsyncEngine | async_sessionmaker[AsyncSession],
        settings: MailSettings,
        backend: MailBackend,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_parked: ParkedCallback | None = None,
        rng: random.Random | None = None,
        jobs: JobQueue | None = None,
    ) -> None:
        engine = db if isinstance(db, AsyncEngine) else db.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError(
                "Outbox needs an AsyncEngine or a sessionmaker bound to one"
            )
        # Our own factory: rows handed out (to on_parked too) must stay readable
        # after their session closed.
        self.store = OutboxStore(engine)
        self.settings = settings
        self.backend = backend
        self._clock = clock
        self._on_parked = on_parked
        #: Called with ``sent``, ``retried`` or ``parked`` (bridge.metrics).
        self.on_outcome: Callable[[str], None] = lambda outcome: None
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self.jobs = jobs
        if jobs is not None:
            # The job's lease covers the mail's: a send is cut off before.
            jobs.kind(SEND_JOB, self._send_job, lease=self.lease + LEASE_MARGIN)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.backend.deadline_seconds) + LEASE_MARGIN

    # --- enqueue -------------------------------------------------------------

    async def enqueue(
        self,
        message: EmailMessage,
        *,
        dedup_key: str,
        case_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> tuple[OutboxMail, bool]:
        """Store ``message`` for sending; returns (row, created).

        A second enqueue with the same ``dedup_key`` returns the first row and
        stores nothing. Missing ``From``, ``Date`` and ``Message-ID`` are filled in
        here, once; ``Bcc`` becomes envelope only. With ``session`` the row joins
        the caller's transaction: call :meth:`wake` after that commits.
        """
        if not 0 < len(dedup_key) <= 200:
            raise ValueError("dedup_key must have 1 to 200 characters")
        msg = copy.deepcopy(message)
        now = self._clock()
        if msg["From"] is None:
            msg["From"] = self.settings.sender.header()
        if msg["Date"] is None:
            msg["Date"] = format_datetime(now)
        if msg["Message-ID"] is None:
            msg["Message-ID"] = make_msgid(domain=self.settings.sender.domain)
        recipients = recipients_of(msg)
        if not recipients:
            raise ValueError("the message has no recipient in To, Cc or Bcc")
        del msg["Bcc"]
        row, created = await self.store.insert(
            dict(
                dedup_key=dedup_key,
                message_id=str(msg["Message-ID"]).strip(),
                envelope_from=self.settings.sender.address,
                recipients=recipients,
                raw=msg.as_bytes(policy=policy.SMTP),
                subject=str(msg["Subject"] or ""),
                state=QUEUED,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                case_id=case_id,
            ),
            session=session,
        )
        if created:
            await self._schedule(row, session)
        return row, created

    # --- sending ------------------------------------------------------------

    async def _schedule(
        self, mail: OutboxMail, session: AsyncSession | None = None
    ) -> None:
        """The mail's ``mail.send`` job, due when the mail is (with ``session``
        in the caller's transaction, like the mail itself)."""
        if self.jobs is None:
            return
        key, run_at = f"mail:{mail.id}", as_utc(mail.next_attempt_at)
        if session is None:
            await self.jobs.enqueue(
                SEND_JOB,
                key,
                {"mail": mail.id},
                run_at=run_at,
                case_id=mail.case_id,
                again=True,
            )
            return
        session.add(
            Job(
                kind=SEND_JOB,
                key=key,
                payload={"mail": mail.id},
                state="queued",
                run_at=run_at,
                attempts=0,
                case_id=mail.case_id,
                created_at=self._clock(),
            )
        )

    async def recover(self) -> int:
        """At start: every mail that waits (queued, or sending when a process
        died) has its job; returns how many."""
        waiting = await self.store.all((QUEUED, SENDING))
        for mail in waiting:
            await self._schedule(mail)
        return len(waiting)

    async def _send_job(self, run: JobRun) -> None:
        mail_id = int(run.payload["mail"])
        async with self._lock:
            mail = await self.store.claim_next(self._clock(), self.lease, mail_id)
            if mail is not None:
                await self._deliver(mail)
        after = await self.store.get(mail_id)
        if after is None or after.state in (SENT, PARKED):
            return  # done, parked (the admins were told) or erased
        # In backoff, or leased by a worker that may have died: look again then.
        wait = as_utc(after.next_attempt_at) - self._clock()
        raise RetryLater(max(wait, timedelta(milliseconds=100)), "mail not due yet")

    async def flush(self) -> int:
        """Send every mail that is due now, one at a time; returns how many were
        tried. Mails that failed and wait for their backoff are not due."""
        tried = 0
        async with self._lock:
            while await self._send_next():
                tried += 1
        return tried

    async def _send_next(self) -> bool:
        mail = await self.store.claim_next(self._clock(), self.lease)
        if mail is None:
            return False
        await self._deliver(mail)
        return True

    async def _deliver(self, mail: OutboxMail) -> None:
        failure: DeliveryError
        try:
            async with asyncio.timeout(self.backend.deadline_seconds):
                remark = await self.backend.send(
                    mail.raw, sender=mail.envelope_from, recipients=mail.recipients
                )
        except DeliveryError as exc:
            failure = exc
        except TimeoutError:
            failure = TemporaryFailure(
                f"{self.backend.describe()} did not finish within "
                f"{self.backend.deadline_seconds:g} s"
            )
        except Exception as exc:
            log.exception("mail %s: unexpected error from the backend", mail.id)
            failure = TemporaryFailure(f"unexpected error: {exc!r}")
        else:
            await self._mark_sent(mail, remark)
            return
        await self._failed(mail, failure)

    async def _mark_sent(self, mail: OutboxMail, remark: str | None) -> None:
        values: dict[str, object] = {"state": SENT, "sent_at": self._clock()}
        if remark:
            values["last_error"] = remark
        # The server has the mail now: losing this write means sending it again
        # after the lease, so try a little harder than elsewhere.
        for pause in (0.5, 2.0, None):
            try:
                if not await self.store.finish(mail, **values):
                    log.warning(
                        "mail %s was sent, but its lease had run out and another "
                        "worker took it: it may arrive twice (same Message-ID %s)",
                        mail.id,
                        mail.message_id,
                    )
                else:
                    log.info("mail %s sent (%s)", mail.id, mail.dedup_key)
                    self.on_outcome("sent")
                return
            except Exception:
                if pause is None:
                    raise
                log.warning("mail %s sent, recording it failed; retrying", mail.id)
                await asyncio.sleep(pause)

    async def _failed(self, mail: OutboxMail, failure: DeliveryError) -> None:
        now = self._clock()
        if failure.permanent or mail.attempts >= self.settings.max_attempts:
            reason = (
                failure.message
                if failure.permanent
                else f"gave up after {mail.attempts} attempts: {failure.message}"
            )
            if await self.store.finish(mail, state=PARKED, last_error=reason):
                log.error("mail %s parked: %s", mail.id, reason)
                self.on_outcome("parked")
                parked = await self.store.get(mail.id)
                await self._alert(parked or mail, reason)
            return
        delay = retry_delay(
            mail.attempts, self.settings.backoff_seconds, self._rng.random()
        )
        log.warning(
            "mail %s not sent (attempt %d of %d), next try in %.0f s: %s",
            mail.id,
            mail.attempts,
            self.settings.max_attempts,
            delay.total_seconds(),
            failure.message,
        )
        await self.store.finish(
            mail, state=QUEUED, next_attempt_at=now + delay, last_error=failure.message
        )
        self.on_outcome("retried")

    async def _alert(self, mail: OutboxMail, reason: str) -> None:
        if self._on_parked is None:
            return
        try:
            async with asyncio.timeout(ALERT_TIMEOUT_SECONDS):
                await self._on_parked(mail, reason)
        except Exception:
            log.exception("mail %s: the alert about parking it failed", mail.id)

    # --- admin and retention -------------------------------------------------

    async def requeue(self, mail_id: int) -> bool:
        """Send a parked mail again (after an admin fixed the cause)."""
        done = await self.store.requeue(mail_id, self._clock())
        mail = await self.store.get(mail_id) if done else None
        if mail is not None:
            await self._schedule(mail)
        return done

    async def erase_case(self, case_id: str) -> int:
        """Delete every mail of a case, whatever its state (erasure request),
        and their copies in the embedded Maildir."""
        mails = await self.store.of_case(case_id)
        forget = getattr(self.backend, "forget", None)
        if forget is not None and mails:
            await asyncio.to_thread(forget, [m.message_id for m in mails])
        return await self.store.erase_case(case_id)

    async def blank_bodies(self, older_than: timedelta) -> int:
        """Retention of sent mails (``retention.mail_bodies_days``)."""
        return await self.store.blank_sent(self._clock() - older_than)

    async def purge(self, older_than: timedelta) -> int:
        """Delete sent and parked mails older than the retention period."""
        return await self.store.purge(self._clock() - older_than)

    async def counts(self) -> dict[str, int]:
        """Mails per state, for /metrics and the health check."""
        return await self.store.counts()

    async def get(self, dedup_key: str) -> OutboxMail | None:
        return await self.store.by_dedup_key(dedup_key)
