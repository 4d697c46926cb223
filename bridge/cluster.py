"""Several bridge processes on one PostgreSQL, behind one load balancer without
sticky sessions: what they share beyond the tables.

- **Wake-ups** (:meth:`Cluster.publish`, :meth:`Cluster.on`): a citizen's
  long-poll is held by the process the request reached, while the staff reply
  may be worked off by another. Every process listens on the PostgreSQL
  channel ``buergerchat`` (``LISTEN``/``NOTIFY``, on a connection of its own)
  and hears what the others wrote: a case's new event, a revoked token, an
  erased case, a typing notice, a stored appservice transaction. A notice
  carries only ids: the receiver reads the rows itself. Notices sent while a
  listener was away are lost, so after every (re)connect the handlers of
  :meth:`on_resync` run (long-polls re-read the database).
- **Leases** (:class:`Lease`): the appservice inbox is worked off in order by
  one process at a time; a dead holder's lease runs out and another takes it.
- **The routing lock** (:meth:`Cluster.lock`): routing decisions see the one
  before, whichever process made it (``pg_advisory_xact_lock``; released with
  its transaction, so a killed process cannot keep it).

On SQLite there is one process: the same calls work inside it (no notices,
the lock is an ``asyncio.Lock``, the lease is a row like on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import as_utc, utcnow
from .db.models import Lease as LeaseRow
from .db.tables import TableStore
from .retries import backoff
from .tasks import cancel

log = logging.getLogger("buergerchat.cluster")

CHANNEL = "buergerchat"
#: PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more.
PAYLOAD_MAX = 7900
#: The routing lock's holder must not stay idle longer than this: a decision
#: waits for Synapse (presence, invites of queued citizens), which answers or
#: times out well within it; a hung holder frees the lock after it.
LOCK_IDLE_LIMIT = timedelta(seconds=120)
LOCK_MS = int(LOCK_IDLE_LIMIT.total_seconds() * 1000)
#: A quiet listener connection is pinged this often (and a ping or a NOTIFY
#: taking longer counts as a lost connection).
PING_SECONDS = 15.0
#: Notices kept while the listener is away; beyond, they are dropped and the
#: others told to read everything again (RESYNC) once it is back.
OUTBOX_MAX = 10_000
RESYNC = "resync"
#: How the listening connection shows in ``pg_stat_activity`` (followed by
#: the process's name, so an operator sees whose it is).
LISTENER_APP = "buergerchat-listen"
Handler = Callable[[list[str]], None]


def process_name(port: int | None = None) -> str:
    """Host, port and a random part: unique per running process, readable in
    ``leases.holder`` and the logs."""
    host = socket.gethostname()[:32]
    where = f"{host}:{port}" if port else host
    return f"{where}:{os.getpid()}:{secrets.token_hex(2)}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    digest = hashlib.sha256(f"buergerchat:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Cluster:
    def __init__(self, engine: AsyncEngine, name: str | None = None) -> None:
        self.engine = engine
        self.name = name or process_name()
        #: Several processes can share the database (PostgreSQL).
        self.shared = engine.dialect.name == "postgresql"
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self._resync: list[Callable[[], None]] = []
        self._outbox: list[str] = []
        #: Notices were dropped while the listener was away (outbox full).
        self._dropped = False
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        #: Set while the listener is connected (tests wait for it).
        self.listening = asyncio.Event()
        #: The listener's ``application_name`` (PostgreSQL keeps 63 bytes).
        self.listener_app = f"{LISTENER_APP} {self.name}"[:63]

    # --- wake-ups between processes --------------------------------------------

    def on(self, topic: str, handler: Handler) -> None:
        """``handler(args)`` for every notice of ``topic`` another process sends."""
        self._handlers[topic].append(handler)

    def on_resync(self, handler: Callable[[], None]) -> None:
        """Run after the listener (re)connected: notices may have been missed."""
        self._resync.append(handler)

    def publish(self, topic: str, *args: str) -> None:
        """Tell the other processes (nothing to do with one process). Sent
        after the caller's commit, by the listener's connection, in order."""
        if self._task is None:
            return  # one process (SQLite), or not started
        line = " ".join((self.name, topic, *args))
        if len(line.encode()) > PAYLOAD_MAX or "\n" in line:
            log.warning("notice %s too long for NOTIFY; not sent", topic)
            return
        if len(self._outbox) >= OUTBOX_MAX:
            # Away too long: rather than hold notices without end, the others
            # are told to read everything again once this process is back.
            self._outbox.clear()
            self._dropped = True
        self._outbox.append(line)
        self._kick.set()

    def _received(self, payload: str) -> None:
        for line in payload.split("\n"):
            origin, _, rest = line.partition(" ")
            if origin == self.name or not rest:
                continue  # our own, already handled here
            topic, *args = rest.split(" ")
            if topic == RESYNC:
                self._run_resync()
                continue
            for handler in self._handlers.get(topic, ()):
                try:
                    handler(args)
                except Exception:  # noqa: BLE001 - one notice stops nothing
                    log.warning("notice %s not handled", topic, exc_info=True)

    def _run_resync(self) -> None:
        for handler in self._resync:
            try:
                handler()
            except Exception:  # noqa: BLE001 - the others still run
                log.warning("a resync handler failed", exc_info=True)

    async def start(self) -> None:
        if not self.shared:
            return
        self._task = asyncio.create_task(self._listen(), name="cluster-listen")
        try:
            await asyncio.wait_for(self.listening.wait(), 30)
        except TimeoutError:
            log.warning("not listening for other bridge processes yet; retrying")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    def _dsn(self) -> str:
        url = self.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                conn: asyncpg.Connection = await asyncpg.connect(
                    self._dsn(), server_settings={"application_name": self.listener_app}
                )
            except (OSError, asyncpg.PostgresError) as e:
                failures += 1
                log.warning("cannot listen for other processes (%s); retrying", e)
                await asyncio.sleep(
                    backoff(
                        failures, base=timedelta(seconds=1), cap=timedelta(seconds=30)
                    ).total_seconds()
                )
                continue
            failures = 0
            try:
                await self._serve(conn)
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as e:
                log.warning("listener connection lost (%r); reconnecting", e)
            finally:
                self.listening.clear()
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(0.5)

    async def _serve(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, lambda *a: self._received(str(a[-1])))
        self.listening.set()
        self._run_resync()
        gone = asyncio.ensure_future(lost.wait())
        try:
            while not lost.is_set():
                self._kick.clear()  # before looking: a later publish sets it
                if self._dropped:
                    self._dropped = False
                    self._outbox.insert(0, f"{self.name} {RESYNC}")
                if self._outbox:
                    payload, count = _batch(self._outbox)
                    await asyncio.wait_for(
                        conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload),
                        PING_SECONDS,
                    )
                    del self._outbox[:count]  # only once sent: else sent again
                    continue
                kicked = asyncio.ensure_future(self._kick.wait())
                try:
                    done, _ = await asyncio.wait(
                        {kicked, gone},
                        timeout=PING_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    kicked.cancel()
                if not done:
                    # Quiet: a half-open connection (a failover, a NAT that
                    # forgot it) would never say so. Timing out reconnects.
                    await asyncio.wait_for(conn.execute("SELECT 1"), PING_SECONDS)
        finally:
            gone.cancel()

    # --- one process at a time ---------------------------------------------------

    @asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """Mutual exclusion across every process (and task) of the cluster."""
        local = self._locks.setdefault(name, asyncio.Lock())
        async with local:
            if not self.shared:
                yield
                return
            async with self.engine.connect() as conn:
                # A holder that hangs (stopped, cut off) loses its session and
                # so the lock after LOCK_IDLE_LIMIT, instead of blocking all.
                await conn.execute(
                    text(f"SET LOCAL idle_in_transaction_session_timeout = {LOCK_MS}")
                )
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)}
                )
                try:
                    yield
                finally:
                    try:
                        await conn.rollback()  # ends the transaction: lock free
                    except Exception:  # noqa: BLE001 - the session is gone, and so the lock
                        log.warning("the %s lock's session ended early", name)

    def locked(self, name: str) -> bool:
        """Whether a task of this process holds (or waits in) :meth:`lock`."""
        local = self._locks.get(name)
        return local is not None and local.locked()

    def lease(self, name: str, ttl: timedelta = timedelta(seconds=15)) -> Lease:
        return Lease(self.engine, name, self.name, ttl)


def _batch(lines: list[str]) -> tuple[str, int]:
    """As many waiting lines as fit one NOTIFY payload."""
    size, count = 0, 0
    for line in lines:
        size += len(line.encode()) + 1
        if count and size > PAYLOAD_MAX:
            break
        count += 1
    return "\n".join(lines[:count]), count


class Lease(TableStore):
    """Held by one process at a time: renewed every third of ``ttl``; a holder
    that stops renewing (dead, cut off from the database) counts as holding
    it only until its last renewal's ``ttl`` is over, here and everywhere."""

    def __init__(
        self, engine: AsyncEngine, name: str, holder: str, ttl: timedelta
    ) -> None:
        super().__init__(engine)
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._held_until = 0.0
        self._task: asyncio.Task[None] | None = None
        #: Called when this process takes the lease over.
        self.on_gained: Callable[[], None] | None = None

    @property
    def held(self) -> bool:
        return asyncio.get_running_loop().time() < self._held_until

    async def try_take(self) -> bool:
        """Take or renew the lease; whether this process holds it now."""
        started = asyncio.get_running_loop().time()
        now = utcnow()
        until = now + self.ttl
        was = self.held
        async with self.session.begin() as s:
            taken = await s.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == self.name,
                    (LeaseRow.holder == self.holder) | (LeaseRow.expires_at < now),
                )
                .values(holder=self.holder, expires_at=until)
            )
            got = getattr(taken, "rowcount", 0) == 1
        if not got:
            got = await self._insert(until)
        # Counted from before the write: the others see it expire no earlier.
        self._held_until = started + self.ttl.total_seconds() * 0.9 if got else 0.0
        if got and not was:
            log.info("%s: this process (%s) holds it now", self.name, self.holder)
            if self.on_gained is not None:
                self.on_gained()
        return got

    async def _insert(self, until: Any) -> bool:
        try:
            async with self.session.begin() as s:
                s.add(LeaseRow(name=self.name, holder=self.holder, expires_at=until))
            return True
        except IntegrityError:
            return False  # another process holds it

    async def holder_now(self) -> str | None:
        async with self.session() as s:
            row = await s.scalar(select(LeaseRow).where(LeaseRow.name == self.name))
        if row is None or row.expires_at is None:
            return None
        return row.holder if as_utc(row.expires_at) > utcnow() else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name=f"lease-{self.name}")

    async def _keep(self) -> None:
        every = self.ttl.total_seconds() / 3
        while True:
            try:
                await self.try_take()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the database may be away
                self._held_until = 0.0
                log.warning("lease %s not renewed (%s)", self.name, e)
            await asyncio.sleep(every)

    async def stop(self) -> None:
        """Hand the lease back at once, so another process need not wait."""
        await cancel(self._task)
        self._task = None
        if self._held_until == 0.0:
            return
        self._held_until = 0.0
        try:
            async with self.session.begin() as s:
                await s.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
        except Exception:  # noqa: BLE001 - it runs out by itself
            log.warning("lease %s not handed back", self.name, exc_info=True)
