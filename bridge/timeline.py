"""What the citizen sees of a case: events in cursor order, and the wake-up of
long-polling requests when something new arrives.

:class:`Timeline` is the one writer of ``case_events``: what it adds or marks
delivered wakes the case's long-polls, so no caller has to remember it."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

from .clock import as_utc
from .db.models import CaseEvent
from .db.store import Store
from .tasks import Flights, KeyedLocks

#: Events per answer; a widget asks again for the rest.
PAGE = 200
#: Cases whose newest event is kept in memory for the widgets it wakes.
FRESH_CASES = 10_000

log = logging.getLogger("buergerchat.timeline")


class Notifier:
    """Wakes every request waiting on a case when an event is added to it."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        #: Per case, a cursor no event of the case lies beyond, as far as this
        #: process wrote or read; a re-issued idle long-poll then needs no
        #: database read (see ``nothing_after``). Every writer of the timeline
        #: notifies with the event's cursor; a wake-up from another process must
        #: carry it too.
        self._beyond: dict[str, int] = {}
        #: Per case, how many wake-ups there were (see Timeline.read_after).
        self._version: defaultdict[str, int] = defaultdict(int)
        #: Tells the other bridge processes (bridge.peers); None: one process.
        self.peers: Callable[[str, int | None], None] | None = None

    def notify(
        self, case_id: str, seq: int | None = None, *, here_only: bool = False
    ) -> None:
        """Wake the case's long-polls, in this process and (unless
        ``here_only``) in the others; ``seq``: the cursor of a new event."""
        if seq is not None:
            self._beyond[case_id] = max(seq, self._beyond.get(case_id, seq))
        self._version[case_id] += 1
        for future in self._waiters.pop(case_id, ()):
            if not future.done():
                future.set_result(None)
        if self.peers is not None and not here_only:
            self.peers(case_id, seq)

    def resync(self) -> None:
        """Wake-ups from other processes may have been missed: nothing known
        of any case's cursor any more, and every long-poll reads again."""
        self._beyond.clear()
        self.wake_all()

    def wake_all(self) -> None:
        """At shutdown: let every waiting long-poll answer now instead of at its
        timeout, so stopping does not wait for them."""
        for case_id in list(self._waiters):
            self.notify(case_id, here_only=True)

    def known_top(self, case_id: str) -> int | None:
        """The cursor no event of the case lies beyond (None: not known)."""
        return self._beyond.get(case_id)

    def nothing_after(self, case_id: str, after: int) -> bool:
        """True when the case surely has no event beyond cursor ``after``."""
        known = self._beyond.get(case_id)
        return known is not None and after >= known

    def read(self, case_id: str, after: int, last: int | None) -> None:
        """A read of the case's events beyond ``after`` ended at ``last`` (None:
        it found none, so nothing lies beyond ``after``)."""
        top = after if last is None else last
        self._beyond[case_id] = max(top, self._beyond.get(case_id, top))

    def unknown(self, case_id: str) -> None:
        """What lies beyond the case's cursor is not known any more."""
        self._beyond.pop(case_id, None)

    def forget(self, case_id: str) -> None:
        """The case's events were erased."""
        self.unknown(case_id)
        self._version.pop(case_id, None)

    def version(self, case_id: str) -> int:
        """Grows with every wake-up of the case."""
        return self._version.get(case_id, 0)

    def subscribe(self, case_id: str) -> asyncio.Future[None]:
        """Register *before* reading the database, so an event added between the
        read and the wait still wakes the request."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[case_id].add(future)
        return future

    async def wait(
        self,
        case_id: str,
        future: asyncio.Future[None],
        timeout: float,  # noqa: ASYNC109 (long-poll deadline)
    ) -> None:
        # The future is this waiter's own: awaited directly, a wake-up reaches
        # the request in one turn of the loop (wait_for and shield add three
        # per request, and a message wakes a hundred at once).
        timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
        try:
            await future
        finally:
            timer.cancel()
            self.wait_done(case_id, future)

    def wait_done(self, case_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(case_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[case_id]


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Page(list[CaseEvent]):
    """One read of a case's events, shared by every widget it wakes (read-only
    for them). What the citizen API encodes of it is kept with it, so a message
    is encoded once for all its widgets, and for no longer than they hold it."""

    def __init__(self, events: Iterable[CaseEvent] = ()) -> None:
        super().__init__(events)
        #: (cursor, signals version) → (the encoded answer, its next cursor)
        self.frames: dict[tuple[int, int], tuple[bytes, int]] = {}


class Timeline:
    """Writes the citizen's timeline and wakes whoever waits on the case."""

    def __init__(self, store: Store, notifier: Notifier | None = None) -> None:
        self.store = store
        self.notifier = notifier or Notifier()
        #: Told of every new event once it is stored (a bot that mirrors a
        #: case elsewhere); a watcher's failure is logged, the event stays.
        self.watchers: list[Callable[[CaseEvent], Awaitable[None]]] = []
        #: (case, cursor) → the read in flight, marked with the wake-ups seen
        self._reading: Flights[tuple[str, int], Page] = Flights()
        #: One writer per case at a time in this process: its events are
        #: committed and woken in cursor order (across processes the database
        #: orders them: Store.add_event).
        self._writing: KeyedLocks[str] = KeyedLocks()
        #: Per case, its newest event as a page, with the cursor before it:
        #: every widget that had everything before is woken for exactly this
        #: page, and gets it without a database read (see ``add``).
        self._fresh: dict[str, tuple[int, Page]] = {}

    async def read_after(self, case_id: str, after: int) -> Page:
        """The case's events beyond cursor ``after`` (a page). A message wakes
        every widget of its case at once, all asking from the same cursor: they
        get the message from memory, or share one database read — but only one
        that began after every wake-up the caller has seen (events are
        committed before their wake-up), so no one is handed a read older than
        what woke them. The page is shared: callers do not change it."""
        fresh = self._fresh.get(case_id)
        if fresh is not None and fresh[0] == after:
            return fresh[1]
        return await self._reading.share(
            (case_id, after),
            self.notifier.version(case_id),
            partial(self._read, case_id, after),
        )

    async def _read(self, case_id: str, after: int) -> Page:
        events = Page(await self.store.events_after(case_id, after, PAGE))
        if len(events) < PAGE:
            # A full page may have more behind it: then nothing is known.
            self.notifier.read(case_id, after, events[-1].seq if events else None)
        return events

    async def add(
        self,
        case_id: str,
        *,
        type: str,
        sender: str,
        body: str,
        sender_name: str | None = None,
        matrix_event_id: str | None = None,
        client_id: str | None = None,
        delivery: str = "delivered",
        ts: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[CaseEvent, bool]:
        """Append an event; returns (event, created). One known by its
        ``client_id`` or ``matrix_event_id`` is returned instead, and wakes
        nobody: there is nothing new to read."""
        async with self._writing(case_id):
            try:
                event, created = await self.store.add_event(
                    case_id,
                    type=type,
                    sender=sender,
                    body=body,
                    sender_name=sender_name,
                    matrix_event_id=matrix_event_id,
                    client_id=client_id,
                    delivery=delivery,
                    ts=ts,
                    extra=extra,
                )
            except BaseException:
                # Cancelled (a job's timeout) or failed, it may still have
                # committed: memory no longer knows what lies beyond the
                # case's last cursor, and the waiting widgets read again.
                self._fresh.pop(case_id, None)
                self.notifier.unknown(case_id)
                self.notifier.notify(case_id)
                raise
            if created:
                self._keep_fresh(case_id, event)
                self.notifier.notify(case_id, event.seq)
        if created:
            for watch in self.watchers:
                try:
                    await watch(event)
                except Exception:
                    log.exception("a watcher of %s failed", case_id)
        return event, created

    def _keep_fresh(self, case_id: str, event: CaseEvent) -> None:
        """``event`` was just committed. In one process, with the case's writes
        in order, nothing lies between the cursor the notifier knew and this
        event: a widget at that cursor is owed exactly ``[event]``. Not with
        several processes (another may have written in between) nor when the
        cursor is unknown or a read already saw this event."""
        self._fresh.pop(case_id, None)
        top = self.notifier.known_top(case_id)
        if self.notifier.peers is not None or top is None or top >= event.seq:
            return
        self._fresh[case_id] = (top, Page([event]))
        if len(self._fresh) > FRESH_CASES:
            del self._fresh[next(iter(self._fresh))]  # the longest quiet

    def forget(self, case_id: str) -> None:
        """The case's events were erased: none stays in memory."""
        self._fresh.pop(case_id, None)
        self.notifier.forget(case_id)

    async def mark_delivered(
        self, case_id: str, seq: int, matrix_event_id: str
    ) -> None:
        """A citizen message is in the room: the citizen sees it delivered."""
        await self.store.mark_delivered(seq, matrix_event_id)
        self._fresh.pop(case_id, None)  # it may hold the message as pending
        self.notifier.notify(case_id)


def event_json(event: CaseEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cursor": str(event.seq),
        "type": event.type,
        "sender": event.sender,
        "sender_name": event.sender_name,
        "body": event.body,
        "ts": as_utc(event.ts).isoformat().replace("+00:00", "Z"),
    }
    if event.client_id and event.sender == "citizen":
        out["client_id"] = event.client_id
    if event.sender == "citizen":
        out["delivery"] = event.delivery
    if event.extra:
        out.update({k: v for k, v in event.extra.items() if k not in out})
    return out
