"""Bridge → Synapse, exactly once: every event the bridge or a bot sends into a
room is stored first, stamped, sent in order per room, and never sent twice.

Synapse deduplicates a repeated ``PUT /send/…/{txnId}`` only in memory, and for
appservice users not across its own restart. So a retry after a crash of the
bridge, of Synapse or of both could post twice. Here:

1. A send is a row in ``matrix_sends`` with an idempotency key before anything
   goes out; the same key again is the same send (a replayed handler, a retry
   loop, a second request with the same client id).
2. The key is written into the content (``de.buergerchat.send_id``) and used as
   the transaction id, so an attempt Synapse still remembers is answered from its
   cache.
3. When the bridge's own events come back through the appservice, their stamp
   marks the row sent. Before a row that may already have reached the room is
   sent again (an attempt failed without a clear "no", or the row is older than
   this process), the room's recent history is searched for its stamp.
4. Rows of one room go out in the order they were stored; the first one that
   cannot go holds back the rest, so order per case is kept.
5. What waits for Synapse is a ``matrix.flush`` job per room in the durable job
   queue (:mod:`bridge.jobs`), retried with its one backoff rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mautrix.errors import MatrixRequestError
from mautrix.types import Event, EventType, RoomID, UserID
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .catchup import pages_back
from .cause import key_for
from .clock import as_utc, utcnow
from .db.models import MatrixSend
from .errors import HOMESERVER_ERRORS
from .jobs import JobQueue, JobRun
from .tasks import KeyedLocks

if TYPE_CHECKING:
    from mautrix.appservice import AppService, IntentAPI

    from .db.store import Store

log = logging.getLogger("buergerchat.delivery")

STAMP = "de.buergerchat.send_id"
FLUSH_JOB = "matrix.flush"
#: A safety net: rooms with waiting sends but no job (an error on the way).
SWEEP_JOB = "matrix.sweep"
SWEEP_EVERY = timedelta(seconds=60)
RETRY = timedelta(seconds=2)
MAX_BACKOFF = timedelta(seconds=60)
SEND_TIMEOUT = 30.0
#: How far back the room is searched for a stamp: until events older than the
#: row (minus this margin), at most this many pages of 100 events.
SEARCH_MARGIN = timedelta(minutes=5)
SEARCH_PAGES = 20
#: A send that waits longer than this makes /healthz report the part as down.
HEALTHY_WAIT = timedelta(minutes=2)
TRANSIENT = HOMESERVER_ERRORS


@dataclass(frozen=True)
class Outcome:
    """What became of a send: its event id once it is in the room."""

    key: str
    state: str
    event_id: str | None


class Deliveries:
    def __init__(self, store: Store, appservice: AppService, jobs: JobQueue) -> None:
        self.store = store
        self.az = appservice
        self.jobs = jobs
        self.session = store.session
        self.started_at = utcnow()
        self._locks: KeyedLocks[str] = KeyedLocks()
        #: Called with each row once it is known to be in its room.
        self.sent_hooks: list[Callable[[MatrixSend], Awaitable[None]]] = []
        jobs.kind(FLUSH_JOB, self._flush_job, base=RETRY, cap=MAX_BACKOFF)
        jobs.kind(SWEEP_JOB, self._sweep, every=SWEEP_EVERY)

    # --- sending ------------------------------------------------------------

    async def send(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        key: str | None = None,
        kind: str = "send",
        sender: str | None = None,
        event_type: str = "m.room.message",
        case_id: str | None = None,
    ) -> str | None:
        """Store and send; the event id once it is in the room, None while it
        waits for Synapse (it goes out by itself later) or was refused."""
        row = await self.enqueue(
            room_id,
            content,
            key=key,
            kind=kind,
            sender=sender,
            event_type=event_type,
            case_id=case_id,
        )
        if row.state == "pending":
            await self.flush(room_id)
        outcome = await self.outcome(row.key)
        return outcome.event_id if outcome else None

    async def enqueue(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        key: str | None = None,
        kind: str = "send",
        sender: str | None = None,
        event_type: str = "m.room.message",
        case_id: str | None = None,
    ) -> MatrixSend:
        """Store a send (or find the one stored under ``key`` before)."""
        key = key_for(kind, key)
        row = MatrixSend(
            key=key,
            room_id=room_id,
            sender=sender or str(self.az.bot_mxid),
            event_type=event_type,
            content={**content, STAMP: key},
            state="pending",
            attempts=0,
            created_at=utcnow(),
            case_id=case_id,
        )
        try:
            async with self.session.begin() as s:
                s.add(row)
            return row
        except IntegrityError:
            async with self.session() as s:
                existing = await s.scalar(
                    select(MatrixSend).where(MatrixSend.key == key)
                )
            if existing is None:
                raise
            return existing

    async def outcome(self, key: str) -> Outcome | None:
        row = await self._row(key)
        return Outcome(row.key, row.state, row.event_id) if row else None

    async def outcomes(self, keys: Sequence[str]) -> dict[str, Outcome]:
        if not keys:
            return {}
        async with self.session() as s:
            rows = await s.scalars(select(MatrixSend).where(MatrixSend.key.in_(keys)))
            return {r.key: Outcome(r.key, r.state, r.event_id) for r in rows}

    async def flush(self, room_id: str) -> None:
        """Send what waits for ``room_id``, oldest first, until one cannot go;
        what cannot go now is left to a ``matrix.flush`` job."""
        try:
            await self._flush(room_id)
        except TRANSIENT as e:
            log.warning("sends to %s wait for Synapse: %s", room_id, e)
            await self._flush_later(room_id, utcnow() + RETRY)

    async def _flush_later(self, room_id: str, run_at: datetime) -> None:
        """The room's flush job is due by ``run_at`` (see ``again``)."""
        key, payload = f"flush:{room_id}", {"room_id": room_id}
        await self.jobs.enqueue(FLUSH_JOB, key, payload, run_at=run_at, again=True)

    async def _flush_job(self, run: JobRun) -> None:
        """The job: a transient error goes back to the queue, which backs off."""
        await self._flush(str(run.payload["room_id"]))

    async def _flush(self, room_id: str) -> None:
        async with self._locks(room_id):
            async with self.session() as s:
                rows = list(
                    await s.scalars(
                        select(MatrixSend)
                        .where(
                            MatrixSend.room_id == room_id,
                            MatrixSend.state == "pending",
                        )
                        .order_by(MatrixSend.seq)
                    )
                )
            if rows:
                await self._send_rows(room_id, rows)

    async def _send_rows(self, room_id: str, rows: list[MatrixSend]) -> None:
        uncertain = [r for r in rows if self._maybe_sent(r)]
        if uncertain:
            since = min(as_utc(r.created_at) for r in uncertain) - SEARCH_MARGIN
            found = await self._stamps_in_room(room_id, since)
            for row in uncertain:
                if row.key in found:
                    log.info(
                        "send %s was already in %s; not sent again", row.key, room_id
                    )
                    await self._mark_sent(row, found[row.key])
        for row in rows:
            if row.state != "pending":
                continue
            try:
                event_id = await asyncio.wait_for(
                    self._intent(row.sender).send_message_event(
                        RoomID(room_id),
                        EventType.find(row.event_type),
                        row.content,  # type: ignore[arg-type]
                        txn_id=_txn_id(row.key),
                    ),
                    SEND_TIMEOUT,
                )
            except MatrixRequestError as e:
                if _permanent(e):
                    await self._mark_failed(row, f"{e.http_status}: {e}")
                    continue
                await self._note_attempt(row, str(e))
                raise
            except HOMESERVER_ERRORS as e:
                # The request may have reached Synapse, even when the error says
                # "cannot connect" (mautrix's MatrixConnectionError): aiohttp
                # repeats a PUT whose pooled connection dropped, and the repeat is
                # what failed to connect. So before sending again, the room is
                # searched.
                await self._note_attempt(row, str(e) or type(e).__name__)
                raise
            await self._mark_sent(row, str(event_id))

    def _maybe_sent(self, row: MatrixSend) -> bool:
        """An attempt may have reached the room: one failed without a clear "no",
        or the row was stored by an earlier run of the bridge."""
        return row.attempts > 0 or as_utc(row.created_at) < self.started_at

    async def _stamps_in_room(self, room_id: str, since: datetime) -> dict[str, str]:
        """Stamps of the bridge's events in the room's history back to ``since``."""
        found: dict[str, str] = {}
        since_ms = since.timestamp() * 1000
        async for chunk in pages_back(
            self.az, room_id, page=100, max_pages=SEARCH_PAGES, timeout=SEND_TIMEOUT
        ):
            for event in chunk:
                stamp = (event.get("content") or {}).get(STAMP)
                if isinstance(stamp, str):
                    found.setdefault(stamp, str(event["event_id"]))
            if min(e.get("origin_server_ts", 0) for e in chunk) < since_ms:
                break
        return found

    def _intent(self, sender: str) -> IntentAPI:
        if sender == self.az.bot_mxid:
            return self.az.intent
        return self.az.intent.user(UserID(sender))

    async def _mark_sent(self, row: MatrixSend, event_id: str) -> None:
        now = utcnow()
        async with self.session.begin() as s:
            await s.execute(
                update(MatrixSend)
                .where(MatrixSend.seq == row.seq, MatrixSend.state == "pending")
                .values(state="sent", event_id=event_id, sent_at=now)
            )
        row.state, row.event_id, row.sent_at = "sent", event_id, now
        await self._run_hooks(row)

    async def _run_hooks(self, row: MatrixSend) -> None:
        for hook in self.sent_hooks:
            try:
                await hook(row)
            except Exception:
                log.exception("sent hook %s failed for %s", hook, row.key)

    async def _mark_failed(self, row: MatrixSend, error: str) -> None:
        log.error("Synapse refused send %s to %s: %s", row.key, row.room_id, error)
        async with self.session.begin() as s:
            await s.execute(
                update(MatrixSend)
                .where(MatrixSend.seq == row.seq)
                .values(state="failed", last_error=error[:2000])
            )
        row.state = "failed"

    async def _note_attempt(self, row: MatrixSend, error: str) -> None:
        """Record a failed attempt: from now on the row may be in the room."""
        async with self.session.begin() as s:
            await s.execute(
                update(MatrixSend)
                .where(MatrixSend.seq == row.seq)
                .values(attempts=row.attempts + 1, last_error=error[:2000])
            )
        row.attempts += 1

    # --- the events coming back -----------------------------------------------

    async def observe(self, event: Event) -> None:
        """Appservice handler: the bridge's own stamped events mark their rows
        sent (also the ones whose answer a crash swallowed)."""
        content = getattr(event, "content", None)
        stamp = None
        if content is not None:
            try:
                stamp = content.serialize().get(STAMP)
            except (AttributeError, TypeError):
                stamp = None
        event_id = getattr(event, "event_id", None)
        if not isinstance(stamp, str) or not event_id:
            return
        async with self.session.begin() as s:
            result = await s.execute(
                update(MatrixSend)
                .where(MatrixSend.key == stamp, MatrixSend.state == "pending")
                .values(state="sent", event_id=str(event_id), sent_at=utcnow())
            )
            changed = int(getattr(result, "rowcount", 0) or 0)
        if changed:
            row = await self._row(stamp)
            if row is not None:
                await self._run_hooks(row)

    async def _row(self, key: str) -> MatrixSend | None:
        async with self.session() as s:
            return await s.scalar(select(MatrixSend).where(MatrixSend.key == key))

    # --- retries and health -----------------------------------------------------

    async def retry(self) -> None:
        """Flush every room with waiting sends now, in this task; what still
        cannot go is left to its job."""
        for room_id in await self._rooms_waiting():
            await self.flush(room_id)

    async def recover(self) -> None:
        """At start: every room with waiting sends (rows an earlier run left)
        gets a flush job due now, and the sweep is scheduled. Nothing is sent
        in the caller's task, so a slow Synapse cannot hold up the start."""
        await self.jobs.enqueue(SWEEP_JOB, SWEEP_JOB, run_at=utcnow() + SWEEP_EVERY)
        await self._schedule_waiting(utcnow())

    async def _sweep(self, run: JobRun) -> None:
        """Every waiting room has a flush job; one in backoff keeps its time."""
        await self._schedule_waiting(utcnow() + MAX_BACKOFF)

    async def _schedule_waiting(self, run_at: datetime) -> None:
        for room_id in await self._rooms_waiting():
            await self._flush_later(room_id, run_at)

    async def _rooms_waiting(self) -> list[str]:
        async with self.session() as s:
            rooms = list(
                await s.scalars(
                    select(MatrixSend.room_id)
                    .where(MatrixSend.state == "pending")
                    .group_by(MatrixSend.room_id)
                    .order_by(func.min(MatrixSend.seq))
                )
            )
        return rooms

    async def health(self) -> dict[str, Any]:
        async with self.session() as s:
            count, oldest = (
                await s.execute(
                    select(func.count(), func.min(MatrixSend.created_at)).where(
                        MatrixSend.state == "pending"
                    )
                )
            ).one()
            failed = await s.scalar(
                select(func.count()).where(MatrixSend.state == "failed")
            )
        waited = (utcnow() - as_utc(oldest)).total_seconds() if oldest else 0.0
        return {
            "ok": waited < HEALTHY_WAIT.total_seconds(),
            "pending": int(count),
            "oldest_pending_seconds": round(waited, 1),
            "refused": int(failed or 0),
        }


def _txn_id(key: str) -> str:
    """A transaction id from the key (URL-safe, at most 255 characters)."""
    import hashlib

    return "bc-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _permanent(error: MatrixRequestError) -> bool:
    """A 4xx other than rate limiting: sending again would be refused again."""
    status = getattr(error, "http_status", 0) or 0
    return 400 <= status < 500 and status not in (408, 429)
