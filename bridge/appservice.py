"""The Matrix application service, with transactions that survive a crash.

mautrix acknowledges a transaction before its handlers ran and remembers seen
transaction ids only in memory: a crash loses events, a restart replays them. Here
a transaction is written to the database first, acknowledged second, and worked
off from the database in order by one owned task.

Synapse numbers its transactions from 1 again after a restart, so an id alone
says nothing: a known id with another body is stored as new work, and each event
is worked off once by its event id (``as_seen_events``, kept for
``SEEN_EVENTS_KEPT``). Each handler runs with a *cause* (the event id and the
handler's place), from which the sends it makes derive their idempotency keys:
if a crash interrupts a handler and the event is worked off again, what it
already sent is not sent twice (see :mod:`bridge.delivery`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from json import JSONDecodeError
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionError, web
from mautrix.appservice import AppService
from mautrix.appservice.state_store.file import FileASStateStore
from mautrix.types import JSON, Event, SerializerError
from sqlalchemy.exc import InterfaceError, OperationalError

from .catchup import CATCH_UP_EVERY, CatchUp
from .cause import caused_by
from .clock import utcnow
from .cluster import Lease
from .db.models import Transaction
from .db.store import Store
from .tasks import cancel

log = logging.getLogger("buergerchat.appservice")
EventHandler = Callable[[Event], Awaitable[None]]
EphemeralHandler = Callable[[dict[str, Any]], Awaitable[None]]
#: Where Synapse puts typing notices and receipts in a transaction (MSC2409;
#: the stable key, then the unstable one older Synapse versions use).
EPHEMERAL_KEYS = ("ephemeral", "de.sorunome.msc2409.ephemeral")
#: How long worked-off transactions and seen event ids are kept for dedup.
TRANSACTIONS_KEPT = timedelta(days=1)
SEEN_EVENTS_KEPT = timedelta(days=30)
#: An event older than this in a transaction is not worked off: its id may be
#: forgotten already, so it may have been worked off before (Synapse resends a
#: transaction it left unsent at its next outage, which can be weeks later;
#: see _check_number). The catch-up does not look further back either.
OLDEST_WORKED_OFF = SEEN_EVENTS_KEPT - timedelta(days=1)
PRUNE_EVERY = timedelta(hours=1)
#: Transactions held for the worker in memory at most (beyond: read back).
HANDED_MAX = 500
#: A process without the inbox lease looks this often whether it got it.
LEASE_LOOK_SECONDS = 5.0
#: A handler failing with one of these is retried, not skipped: the connection
#: to Synapse or the database broke, or SQLite was locked; the same event will
#: work once it is back. MatrixError answers (a refusal) are not among them.
RETRY_ERRORS: tuple[type[BaseException], ...] = (
    ClientConnectionError,
    ConnectionError,
    TimeoutError,
    OperationalError,
    InterfaceError,
)


class DurableAppService(AppService):
    def __init__(
        self,
        *,
        store: Store,
        state_file: Path,
        middlewares: list,
        client_max_size: int,
        **kwargs: object,
    ) -> None:
        self.store = store
        self._handlers: list[EventHandler] = []
        self._ephemeral: list[EphemeralHandler] = []
        #: In arrival order, one at a time (a "stopped typing" must not overtake
        #: the "typing" before it); bounded, as losing one is harmless.
        self._ephemeral_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1000)
        self._ephemeral_worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        #: Transactions this process stored since the worker last found the
        #: inbox table worked off, in stored order (``_storing``): the worker
        #: takes them from here instead of reading them back (one process).
        self._handed: list[Transaction] = []
        self._storing = asyncio.Lock()
        #: Whether the last drain left nothing unprocessed in the table.
        self._inbox_clear = False
        self._pruned_at = utcnow() - PRUNE_EVERY
        #: Set by the bridge: finds events Synapse never pushed (bridge.catchup).
        self.catch_up: CatchUp | None = None
        self._catch_up_due = True
        self._caught_up_at = utcnow()
        self._last_txn_number = -1
        #: With several bridge processes: only the holder works off the inbox
        #: (any process stores what Synapse pushes). None: this one always.
        self.lease: Lease | None = None
        #: Tell the other processes of a stored transaction and of typing
        #: notices and receipts (bridge.peers); None: one process.
        self.peers_stored: Callable[[], None] | None = None
        self.peers_ephemeral: Callable[[dict[str, Any]], None] | None = None
        super().__init__(
            state_store=FileASStateStore(str(state_file), binary=False),
            aiohttp_params={
                "middlewares": middlewares,
                "client_max_size": client_max_size,
            },
            log=log,
            **kwargs,  # type: ignore[arg-type]
        )

    def on_event(self, handler: EventHandler) -> None:
        """Register a handler for every room event, in transaction order."""
        self._handlers.append(handler)

    def on_ephemeral(self, handler: EphemeralHandler) -> None:
        """Register a handler for typing notices and read receipts: handed on
        at once, not through the inbox (losing one is harmless, waiting for
        the inbox would make them late)."""
        self._ephemeral.append(handler)

    def _hand_on_ephemeral(self, body: dict[str, Any]) -> None:
        found = (body[k] for k in EPHEMERAL_KEYS if isinstance(body.get(k), list))
        edus: list[Any] = next(found, [])
        for edu in edus:
            if isinstance(edu, dict):
                self.hand_on_ephemeral(edu)
                if self.peers_ephemeral is not None:
                    self.peers_ephemeral(edu)

    def hand_on_ephemeral(self, edu: dict[str, Any]) -> None:
        """One typing notice or receipt, from Synapse or another process."""
        if self._ephemeral:
            try:
                self._ephemeral_queue.put_nowait(edu)
            except asyncio.QueueFull:
                log.warning("ephemeral events pile up; %s dropped", edu.get("type"))
        if self._ephemeral_queue.empty():
            return  # most transactions: events only, no task to start
        if self._ephemeral_worker is None or self._ephemeral_worker.done():
            self._ephemeral_worker = asyncio.create_task(
                self._work_off_ephemeral(), name="appservice-ephemeral"
            )

    async def _work_off_ephemeral(self) -> None:
        while not self._ephemeral_queue.empty():
            edu = self._ephemeral_queue.get_nowait()
            for handler in self._ephemeral:
                try:
                    await handler(edu)
                except Exception:  # noqa: BLE001 - a typing notice stops nothing
                    log.warning(
                        "ephemeral %s not handled", edu.get("type"), exc_info=True
                    )

    async def _http_handle_transaction(self, request: web.Request) -> web.Response:
        """Replaces mautrix's handler (its routes call this method by name)."""
        if not self._check_token(request):
            return web.json_response(
                {"errcode": "M_FORBIDDEN", "error": "Invalid hs_token"}, status=403
            )
        txn_id = request.match_info["transaction_id"]
        try:
            body = await request.json()
        except JSONDecodeError:
            return web.json_response(
                {"errcode": "M_NOT_JSON", "error": "Body is not JSON"}, status=400
            )
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return web.json_response(
                {"errcode": "M_BAD_JSON", "error": "Missing events list"}, status=400
            )
        self._hand_on_ephemeral(body)
        if self.lease is None:
            # One process sees every push; with several, each sees some, and
            # the lease holder looks at the stored order instead (drain()).
            self._check_number(txn_id)
        if not body["events"]:
            if self.lease is None:
                # Typing notices and receipts only: handed on above, nothing
                # to keep.
                return web.json_response({})
            # With several processes the lease holder judges the numbers in
            # stored order: this one's number must be there too, or it looks
            # like a gap (see _check_number).
            body = {"events": []}
        # Stored before acknowledged: if this raises, Synapse gets a 500 and retries.
        async with self._storing:
            try:
                stored = await self.store.save_transaction(txn_id, body)
            except BaseException:
                # It may have committed all the same: the table, not the
                # hand-over, says what is left.
                self._inbox_clear = False
                raise
            if stored is None:
                log.debug("transaction %s was stored before; acknowledging", txn_id)
            elif self.lease is None:
                self._handed.append(stored)
                if len(self._handed) > HANDED_MAX:  # the worker is stuck: the table
                    self._handed.clear()
                    self._inbox_clear = False
        self.stored()
        return web.json_response({})

    def _check_number(self, txn_id: str) -> None:
        """Synapse numbers its transactions 1, 2, 3, … and sends them one at a
        time: a number that goes back or skips ahead means events to look for
        in the rooms before anything newer is worked off. One process judges
        them as they arrive; with several, the lease holder judges them in
        stored order (every transaction is stored then, typing-only ones as
        an empty one)."""
        if not txn_id.isdigit():
            return
        number = int(txn_id)
        if number < self._last_txn_number:
            # Synapse restarted and numbers from the start again (what it had
            # queued in memory before is lost to us unless we look), or its
            # recoverer resends older transactions.
            log.info("transaction ids went back (%s); catching up", txn_id)
            self.request_catch_up()
        elif 0 <= self._last_txn_number < number - 1:
            # A gap: Synapse sent a newer transaction while older ones wait in
            # its recoverer, or never come: a transaction created in the
            # moment its recoverer declares the appservice up again stays in
            # Synapse's table unsent (scheduler.py: _TransactionController.send
            # still reads "down", _Recoverer.retry already found nothing left;
            # seen in the fault suite on PostgreSQL, a staff message missing
            # until the 10-minute catch-up). Their events are in the rooms:
            # work them off first, in order.
            log.info(
                "transaction %s after %s; catching up on the ones between",
                txn_id,
                self._last_txn_number,
            )
            self.request_catch_up()
        self._last_txn_number = number

    def stored(self) -> None:
        """A transaction is in the inbox table: the worker works it off now,
        here or in the process holding the inbox lease."""
        self._wake.set()
        if self.peers_stored is not None:
            self.peers_stored()

    def wake(self) -> None:
        """Another process stored a transaction (or the lease came here)."""
        self._wake.set()

    def lease_gained(self) -> None:
        """This process holds the inbox lease now: the one before may have died
        with a catch-up still due, and judged the numbers since; look in the
        rooms first, and judge numbers afresh."""
        self._last_txn_number = -1
        self.request_catch_up()

    def working_here(self) -> bool:
        return self.lease is None or self.lease.held

    async def forget(self, room_id: str | None, user_id: str) -> None:
        """Erasure: mautrix's state file (members with their display names, the
        registered ghosts) forgets the room and the user, and is written now."""
        store = self.state_store
        for table in (
            "members",
            "full_member_list",
            "power_levels",
            "encryption",
            "create",
        ):
            cache = getattr(store, table, None)
            if isinstance(cache, dict) and room_id:
                cache.pop(room_id, None)
        registered = getattr(store, "_registered", None)
        if isinstance(registered, dict):
            registered.pop(user_id, None)
        flush = getattr(store, "flush", None)
        if flush is not None:
            await flush()

    def start_worker(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="appservice-inbox")

    async def stop_worker(self) -> None:
        await cancel(self._worker)
        self._worker = None
        await cancel(self._ephemeral_worker)
        self._ephemeral_worker = None

    def request_catch_up(self) -> None:
        """Before working off anything newer, look for events Synapse never
        pushed (after it died or restarted). Until that succeeds, the inbox
        waits, so the order per room is kept."""
        self._catch_up_due = True
        self._wake.set()

    async def _run_catch_up(self) -> None:
        if self.catch_up is None:
            self._catch_up_due = False
            return
        # Cleared first: a request that comes in while this one runs (Synapse
        # died again) sets it again and is honoured after this one.
        self._catch_up_due = False
        began = utcnow()
        try:
            events = await self.catch_up.missed()
            done: list[str] = []
            for raw in events:
                await self._dispatch(raw)  # type: ignore[arg-type]
                done.append(str(raw["event_id"]))
            await self.store.mark_seen(done)
        except BaseException:
            # Not worked off: nothing newer goes before these events.
            self._catch_up_due = True
            raise
        self.catch_up.worked_off(began)
        self._caught_up_at = utcnow()

    async def drain(self) -> None:
        """Work off everything stored so far (also used at start-up)."""
        clear, self._inbox_clear = self._inbox_clear, False
        while True:
            batch: Sequence[Transaction] = self._take_handed() if clear else []
            if not batch:
                self._handed.clear()  # the table has them too (or had)
                batch = await self.store.unprocessed_transactions()
            if not batch:
                # Nothing unprocessed is left that was not handed on since (one
                # handed on and also read here is worked off twice: its events
                # are seen by then, and skipped).
                self._inbox_clear = self.lease is None
                return
            for txn in batch:
                if not self.working_here():
                    return  # the lease ran out: another process goes on
                if self.lease is not None:
                    self._check_number(txn.txn_id)  # in stored order
                if self._catch_up_due and self.catch_up is not None:
                    # Events Synapse never pushed go before anything newer.
                    return
                events: list[Any] = [
                    e for e in txn.body.get("events", []) if isinstance(e, dict)
                ]
                ids = [str(e["event_id"]) for e in events if e.get("event_id")]
                seen = await self.store.seen_events(ids) | _too_old(events)
                done: set[str] = set()
                for raw in events:
                    event_id = raw.get("event_id")
                    if event_id in seen or event_id in done:
                        log.debug("event %s was worked off before; skipped", event_id)
                        continue
                    await self._dispatch(raw)
                    if event_id:
                        done.add(str(event_id))
                await self.store.mark_processed(txn.seq, ids)
            await self._prune()
            clear = False  # read the table again before trusting the hand-over

    def _take_handed(self) -> list[Transaction]:
        """The transactions handed on since the table was last found worked
        off: exactly those left to do (one process stores them all)."""
        handed, self._handed = self._handed, []
        return handed

    async def _prune(self) -> None:
        """Keep the dedup tables bounded (about once an hour)."""
        now = utcnow()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        txns, events = await self.store.prune_inbox(
            transactions_older_than=now - TRANSACTIONS_KEPT,
            events_older_than=now - SEEN_EVENTS_KEPT,
        )
        if txns or events:
            log.info("inbox pruned: %d transactions, %d seen event ids", txns, events)

    async def _work(self) -> None:
        while True:
            if utcnow() - self._caught_up_at > CATCH_UP_EVERY:
                self._catch_up_due = True
            # Cleared before the work, not after: a transaction stored while
            # drain() runs sets it again, and the wait below returns at once
            # (cleared after, that wake-up was lost until the next transaction
            # or the 10-minute catch-up, and a staff message waited with it).
            self._wake.clear()
            if not self.working_here():
                await self._sleep_until_woken(LEASE_LOOK_SECONDS)
                continue
            try:
                if self._catch_up_due:
                    await self._run_catch_up()
                await self.drain()
            except asyncio.CancelledError:
                raise
            except RETRY_ERRORS as e:
                log.warning(
                    "the inbox waits for Synapse or the database (%s: %s); "
                    "retrying in 2 s",
                    type(e).__name__,
                    e,
                )
                await asyncio.sleep(2)
                continue
            except Exception:
                log.exception("working off stored transactions failed; retrying")
                await asyncio.sleep(2)
                continue
            await self._sleep_until_woken(CATCH_UP_EVERY.total_seconds())

    async def _sleep_until_woken(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: no task of its own, so a push reaches
        # the worker in one turn of the loop.
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _dispatch(self, raw: JSON) -> None:
        try:
            self._fix_prev_content(raw)
            event = Event.deserialize(raw)
        except SerializerError:
            log.warning(
                "skipping an event that does not parse: %s", json.dumps(raw)[:300]
            )
            return
        try:
            await self.state_store.update_state(event)
        except Exception:
            log.exception("updating the state cache failed for %s", raw.get("event_id"))
        event_id = str(raw.get("event_id") or "")
        for place, handler in enumerate(self._handlers):
            try:
                with caused_by(f"{event_id}/{place}" if event_id else None):
                    await handler(event)
            except RETRY_ERRORS:
                # Synapse or the database is away for a moment: the transaction
                # stays unprocessed and is worked off again (handlers that
                # already ran are idempotent by their cause), so nothing is lost.
                raise
            except Exception:
                # One broken handler must not block the inbox; the event stays in
                # the database, and the traceback tells the operator why.
                log.exception(
                    "handler %s failed for event %s",
                    getattr(handler, "__qualname__", handler),
                    raw.get("event_id"),
                )


def _too_old(events: list[dict[str, Any]]) -> set[str]:
    """Ids of events older than OLDEST_WORKED_OFF (they are skipped)."""
    oldest_ms = (utcnow() - OLDEST_WORKED_OFF).timestamp() * 1000
    old = {
        str(e["event_id"])
        for e in events
        if e.get("event_id")
        and isinstance(e.get("origin_server_ts"), int)
        and e["origin_server_ts"] < oldest_ms
    }
    if old:
        log.warning(
            "%d event(s) older than %d days in a transaction skipped: they may "
            "have been worked off before",
            len(old),
            OLDEST_WORKED_OFF.days,
        )
    return old
