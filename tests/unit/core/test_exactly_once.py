"""Exactly once below the e2e layer: the inbox against renumbered and repeated
transactions, and the delivery of sends against a fake homeserver that persists
an event and then drops the connection, or forgets its transaction ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from mautrix.types import Event
from sqlalchemy.exc import OperationalError

from bridge.appservice import OLDEST_WORKED_OFF, DurableAppService
from bridge.catchup import CatchUp
from bridge.db.store import Store
from bridge.delivery import STAMP, Deliveries
from bridge.jobs import JobQueue

BOT = "@buergerchat:test"
ROOM = "!room:test"
#: Events are recent: older ones than OLDEST_WORKED_OFF are skipped.
STARTED_MS = int(time.time() * 1000)


def event(n: int, body: str = "hi") -> dict[str, Any]:
    return {
        "event_id": f"$e{n}",
        "room_id": ROOM,
        "sender": "@anna:test",
        "type": "m.room.message",
        "origin_server_ts": STARTED_MS + n,
        "content": {"msgtype": "m.text", "body": body},
    }


async def push_transaction(client: TestClient, txn: int) -> None:
    """Synapse pushes transaction ``txn`` (one event of the same number)."""
    async with client.put(
        f"/_matrix/app/v1/transactions/{txn}",
        json={"events": [event(txn)]},
        headers={"Authorization": "Bearer h"},
    ) as r:
        assert r.status == 200, await r.text()


def fails_once_then_records(worked: list[str]) -> Callable[[Event], Awaitable[None]]:
    """A handler that loses the database the first time, then records."""
    fail = [True]

    async def handler(e: Event) -> None:
        if fail.pop() if fail else False:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        worked.append(str(e.event_id))

    return handler


@pytest.fixture
async def inbox(store: Store, tmp_path: Path) -> AsyncIterator[DurableAppService]:
    az = DurableAppService(
        store=store,
        state_file=tmp_path / "state.json",
        middlewares=[],
        client_max_size=1 << 20,
        server="http://127.0.0.1:9",
        domain="test",
        as_token="a",
        hs_token="h",
        bot_localpart="buergerchat",
        id="bc",
    )
    yield az


async def test_renumbered_transactions_are_new_work_and_events_count_once(
    inbox: DurableAppService, store: Store
) -> None:
    """Synapse restarts and sends txn 1 again with new events: they are worked
    off; the same txn with the same body, and an event repeated in another
    transaction, are worked off once."""
    seen: list[str] = []

    async def handler(e: Event) -> None:
        seen.append(str(e.event_id))

    inbox.on_event(handler)
    assert await store.save_transaction("1", {"events": [event(1), event(2)]})
    assert not await store.save_transaction("1", {"events": [event(1), event(2)]})
    await inbox.drain()
    assert await store.save_transaction("1", {"events": [event(2), event(3)]})
    await inbox.drain()
    assert seen == ["$e1", "$e2", "$e3"]
    assert await store.inbox_lag() == (0, None)


class FakeHomeserver:
    """Persists sends by txn id (in memory, like Synapse for appservice users),
    serves /messages, and can drop the connection after persisting."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.txns: dict[str, str] = {}
        self.drop_after_persist = 0
        self.down = False
        self.unknown_paths: list[str] = []
        #: When set, /messages serves these room events (oldest first).
        self.history: list[dict[str, Any]] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_put(
            "/_matrix/client/v3/rooms/{room}/send/{type}/{txn}", self.send
        )
        app.router.add_get("/_matrix/client/v3/rooms/{room}/messages", self.messages)
        app.router.add_post("/_matrix/client/v3/register", self.register)
        app.router.add_post("/_matrix/client/v3/join/{room}", self.join)
        app.router.add_post("/_matrix/client/v3/rooms/{room}/join", self.join)
        app.router.add_get(
            "/_matrix/client/v3/rooms/{room}/state/{type}/{key:.*}", self.state
        )
        app.router.add_get("/_matrix/client/v3/rooms/{room}/state/{type}", self.state)
        app.router.add_route("*", "/{tail:.*}", self.unknown)
        return app

    async def unknown(self, request: web.Request) -> web.Response:
        """Anything else the client asks is a test bug: say which path."""
        self.unknown_paths.append(f"{request.method} {request.path}")
        return web.json_response({"errcode": "M_UNRECOGNIZED"}, status=404)

    async def join(self, request: web.Request) -> web.Response:
        return web.json_response({"room_id": request.match_info["room"]})

    async def register(self, request: web.Request) -> web.Response:
        return web.json_response({"user_id": request.query.get("user_id", BOT)})

    async def state(self, request: web.Request) -> web.Response:
        if request.match_info["type"] == "m.room.create":
            content = {"creator": BOT, "room_version": "10"}
            if request.query.get("format") != "event":
                return web.json_response(content)
            return web.json_response(
                {
                    "type": "m.room.create",
                    "state_key": "",
                    "sender": BOT,
                    "event_id": "$create",
                    "room_id": request.match_info["room"],
                    "origin_server_ts": 0,
                    "content": content,
                }
            )
        return web.json_response({"users_default": 100, "events_default": 0})

    async def send(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            raise web.HTTPServiceUnavailable()
        txn = request.match_info["txn"]
        if txn not in self.txns:
            event_id = f"$s{len(self.events)}"
            self.events.append(
                {"event_id": event_id, "content": await request.json(), "ts": 0}
            )
            self.txns[txn] = event_id
            if self.drop_after_persist:
                # Synapse dies right after persisting: no answer, and it is down.
                self.drop_after_persist -= 1
                self.down = True
                assert request.transport is not None
                request.transport.close()  # the answer never arrives
                await asyncio.sleep(0.1)
                return web.Response()
        return web.json_response({"event_id": self.txns[txn]})

    async def messages(self, request: web.Request) -> web.Response:
        if self.history is not None:
            return web.json_response({"chunk": list(reversed(self.history))})
        chunk = [
            {
                "event_id": e["event_id"],
                "content": e["content"],
                "origin_server_ts": 9e12,
            }
            for e in reversed(self.events)
        ]
        return web.json_response({"chunk": chunk})

    def restart(self) -> None:
        self.txns.clear()  # Synapse forgets appservice transaction ids

    def bodies(self) -> list[str]:
        return [e["content"]["body"] for e in self.events]


@pytest.fixture
async def homeserver(
    store: Store, tmp_path: Path
) -> AsyncIterator[tuple[FakeHomeserver, DurableAppService]]:
    fake = FakeHomeserver()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    az = DurableAppService(
        store=store,
        state_file=tmp_path / "state.json",
        middlewares=[],
        client_max_size=1 << 20,
        server=str(server.make_url("")).rstrip("/"),
        domain="test",
        as_token="a",
        hs_token="h",
        bot_localpart="buergerchat",
        id="bc",
    )
    await az.start("127.0.0.1", 0)
    try:
        yield fake, az
    finally:
        await az.stop()
        await server.close()


def notice(body: str) -> dict[str, Any]:
    return {"msgtype": "m.notice", "body": body}


async def test_answer_lost_then_homeserver_and_bridge_restart_posts_once(
    store: Store, homeserver: tuple[FakeHomeserver, DurableAppService]
) -> None:
    """Synapse persists the event, the answer is lost, Synapse forgets its
    transaction ids and the bridge restarts: the retry finds the stamp in the
    room and sends nothing more."""
    fake, az = homeserver
    fake.drop_after_persist = 1
    first = Deliveries(store, az, JobQueue(store.engine))
    assert await first.send(ROOM, notice("eins"), key="k1") is None, fake.unknown_paths
    fake.restart()
    fake.down = False
    second = Deliveries(
        store, az, JobQueue(store.engine)
    )  # a new process: rows are older than it
    await second.retry()
    assert fake.bodies() == ["eins"], fake.unknown_paths
    outcome = await second.outcome("k1")
    assert outcome is not None and outcome.state == "sent"
    assert fake.events[0]["content"][STAMP] == "k1"


async def test_same_key_is_the_same_send_and_order_is_kept(
    store: Store, homeserver: tuple[FakeHomeserver, DurableAppService]
) -> None:
    """While Synapse refuses, sends wait in order; a repeated key adds nothing;
    once it answers they go out in the order they were stored."""
    fake, az = homeserver
    deliveries = Deliveries(store, az, JobQueue(store.engine))
    fake.down = True
    for body in ("a", "b", "c"):
        assert await deliveries.send(ROOM, notice(body), key=f"o-{body}") is None
    assert await deliveries.send(ROOM, notice("a"), key="o-a") is None
    fake.down = False
    await deliveries.flush(ROOM)
    assert fake.bodies() == ["a", "b", "c"]
    assert await deliveries.send(ROOM, notice("a"), key="o-a") == "$s0"
    assert fake.bodies() == ["a", "b", "c"]


def at(n: int, minutes_ago: float) -> dict[str, Any]:
    """Room event ``$e<n>`` written ``minutes_ago`` minutes ago."""
    ts = int((time.time() - minutes_ago * 60) * 1000)
    return {**event(n), "origin_server_ts": ts}


async def test_catch_up_works_off_a_missed_event_behind_a_newer_seen_one(
    store: Store, homeserver: tuple[FakeHomeserver, DurableAppService]
) -> None:
    """Synapse lost $e2 (held in memory when it died) but pushed $e3: the walk
    goes on past the seen $e3, works off $e2 alone and in room order, and does
    not look further back than the margin before what the inbox last saw."""
    fake, az = homeserver
    fake.history = [at(0, 60), at(1, 3), at(2, 2), at(3, 1)]
    await store.mark_seen(["$e1", "$e3"])
    handled: list[str] = []

    async def handler(e: Event) -> None:
        handled.append(str(e.event_id))

    az.on_event(handler)

    async def rooms() -> list[str]:
        return [ROOM]

    az.catch_up = CatchUp(store, az, rooms, horizon=timedelta(days=1))
    await az._run_catch_up()
    assert handled == ["$e2"]
    assert await store.seen_events(["$e0", "$e2"]) == {"$e2"}
    await az._run_catch_up()  # nothing twice
    assert handled == ["$e2"]


class Missing:
    """A catch-up with nothing to find."""

    async def missed(self) -> list[dict[str, Any]]:
        return []

    def worked_off(self, began: object) -> None:
        pass


async def test_inbox_stops_before_newer_transactions_when_a_catch_up_is_due(
    inbox: DurableAppService, store: Store
) -> None:
    """Synapse died while the inbox worked: the next transaction waits until
    the catch-up has run, so what Synapse never pushed goes first."""
    handled: list[str] = []

    async def handler(e: Event) -> None:
        handled.append(str(e.event_id))
        inbox.request_catch_up()

    inbox.on_event(handler)
    inbox.catch_up = Missing()  # type: ignore[assignment]
    inbox._catch_up_due = False
    await store.save_transaction("1", {"events": [event(1)]})
    await store.save_transaction("2", {"events": [event(2)]})
    await inbox.drain()
    assert handled == ["$e1"]
    assert (await store.inbox_lag())[0] == 1
    await inbox._run_catch_up()
    inbox._catch_up_due = False  # the handler asked again; nothing to find
    await inbox.drain()
    assert handled == ["$e1", "$e2"]


async def test_a_handler_that_loses_the_database_is_retried_not_skipped(
    inbox: DurableAppService, store: Store
) -> None:
    """A handler failing because the database went away (or SQLite was locked)
    leaves the transaction waiting; the next round works it off."""
    stored: list[str] = []
    inbox.on_event(fails_once_then_records(stored))
    await store.save_transaction("1", {"events": [event(1)]})
    with pytest.raises(OperationalError):
        await inbox.drain()
    assert (await store.inbox_lag())[0] == 1
    await inbox.drain()
    assert stored == ["$e1"]
    assert (await store.inbox_lag())[0] == 0


async def test_a_transaction_stored_while_the_worker_is_busy_is_not_left_waiting(
    inbox: DurableAppService, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synapse pushes the next transaction just as the worker finds nothing more
    to do: the worker takes it at once — not at the next push or the 10-minute
    catch-up (a lost wake-up once held a staff message for 60 s in CI)."""
    worked: list[str] = []
    real = store.unprocessed_transactions
    pushed = [False]

    async def unprocessed() -> Any:
        batch = await real()
        if not batch and worked and not pushed[0]:
            # Right after the worker's last look: the HTTP handler stores one.
            pushed[0] = True
            await store.save_transaction("2", {"events": [event(2)]})
            inbox.stored()
        return batch

    async def handler(e: Event) -> None:
        worked.append(str(e.event_id))

    monkeypatch.setattr(store, "unprocessed_transactions", unprocessed)
    inbox.on_event(handler)
    await store.save_transaction("1", {"events": [event(1)]})
    inbox.start_worker()
    try:
        inbox.stored()
        for _ in range(150):
            if worked == ["$e1", "$e2"]:
                break
            await asyncio.sleep(0.02)
        assert pushed[0] and worked == ["$e1", "$e2"], worked
    finally:
        await inbox.stop_worker()


async def test_a_send_synapse_refused_for_now_is_a_job_that_sends_it_later(
    store: Store, homeserver: tuple[FakeHomeserver, DurableAppService]
) -> None:
    """Synapse answers 503: the send waits as a matrix.flush job of its room
    (not in a loop of this process); a worker of another process runs it once
    Synapse is back, and the notice is in the room once."""
    fake, az = homeserver
    jobs = JobQueue(store.engine)
    deliveries = Deliveries(store, az, jobs)
    fake.down = True
    assert await deliveries.send(ROOM, notice("später"), key="later") is None
    job = await jobs.get(f"flush:{ROOM}")
    assert job is not None and job.state == "queued"
    fake.down = False
    other = JobQueue(store.engine)  # another bridge process, same table
    Deliveries(store, az, other)
    await asyncio.sleep(2.5)
    assert await other.run_due() == 1
    assert fake.bodies() == ["später"]
    outcome = await deliveries.outcome("later")
    assert outcome is not None and outcome.state == "sent"


async def test_a_gap_in_transaction_ids_catches_up_before_the_newer_one(
    inbox: DurableAppService,
) -> None:
    """Synapse sends transaction 7 while 5 and 6 still wait in its recoverer
    (seen in the fault suite: their events came after newer ones): a catch-up
    is due before 7 is worked off; ids going back (a restart, the recoverer)
    ask for one too; consecutive ids do not."""
    client = TestClient(TestServer(inbox.app))
    await client.start_server()
    try:
        inbox._catch_up_due = False

        async def push(txn: int) -> bool:
            await push_transaction(client, txn)
            due, inbox._catch_up_due = inbox._catch_up_due, False
            return due

        assert [await push(n) for n in (3, 4)] == [False, False]
        assert await push(7)
        assert await push(5)
        assert not await push(6)
    finally:
        await client.close()


class HeldLease:
    held = True


async def test_with_several_processes_the_holder_judges_ids_in_stored_order(
    inbox: DurableAppService, store: Store
) -> None:
    """Behind a load balancer each process receives some of Synapse's pushes
    (1, 3, 5 here, 2, 4 there): a receiving process must not take that for
    gaps (a catch-up per staff message); every transaction is stored, one
    with typing notices only as an empty one, so the lease holder sees every
    number in stored order: consecutive ones ask for nothing, a number that
    never came (Synapse left it unsent: see _check_number) and numbers going
    back (Synapse restarted) ask for a catch-up before anything newer."""
    inbox.lease = HeldLease()  # type: ignore[assignment]
    inbox.catch_up = None
    client = TestClient(TestServer(inbox.app))
    await client.start_server()

    async def push(txn: int, events: list[dict[str, Any]]) -> None:
        async with client.put(
            f"/_matrix/app/v1/transactions/{txn}",
            json={"events": events, "ephemeral": [{"type": "m.typing"}]},
            headers={"Authorization": "Bearer h"},
        ) as r:
            assert r.status == 200

    async def judged() -> bool:
        await inbox.drain()
        due, inbox._catch_up_due = inbox._catch_up_due, False
        return due

    try:
        inbox._catch_up_due = False
        for txn in (1, 2, 3, 4, 5):
            if txn % 2:  # this process's share
                await push(txn, [event(txn)])
            elif txn == 2:  # the other's: typing only, stored empty
                await store.save_transaction("2", {"events": []})
            else:
                await store.save_transaction("4", {"events": [event(4)]})
        assert not inbox._catch_up_due  # no gaps as they arrive here
        assert not await judged()
        for txn in (6, 7, 8):
            await push(txn, [] if txn == 7 else [event(txn)])
        assert not await judged()  # 6, 7 (typing only), 8
        await push(10, [event(10)])  # 9 never came
        assert await judged()
        await store.save_transaction("1", {"events": [event(101)]})
        assert await judged()  # numbering started again: Synapse restarted
        assert await store.unprocessed_transactions() == []
        inbox.lease_gained()  # from another process, which may have died
        assert inbox._catch_up_due and inbox._last_txn_number == -1
    finally:
        await client.close()


async def test_an_event_older_than_the_seen_ids_are_kept_is_not_worked_off(
    inbox: DurableAppService, store: Store
) -> None:
    """Synapse resends a transaction it left unsent at its next outage, which
    can be weeks later, when the event's id is no longer remembered: such an
    event is skipped (it may have been worked off before: a command must not
    run twice), a recent one in the same transaction is worked off."""
    handled: list[str] = []

    async def handler(evt: Any) -> None:
        handled.append(str(evt.event_id))

    inbox.on_event(handler)
    inbox.catch_up = None
    inbox._catch_up_due = False
    weeks_ago = STARTED_MS - int(OLDEST_WORKED_OFF.total_seconds() * 1000) - 60_000
    old = {**event(1), "origin_server_ts": weeks_ago}
    await store.save_transaction("1", {"events": [old, event(2)]})
    await inbox.drain()
    assert handled == ["$e2"]
    assert await store.seen_events(["$e1", "$e2"]) == {"$e1", "$e2"}


async def test_typing_and_receipts_are_handed_on_at_once_and_not_kept(
    inbox: DurableAppService, store: Store
) -> None:
    """MSC2409: the ephemeral events of a transaction (stable key, or the
    unstable one) reach the ephemeral handlers at once; a transaction with
    nothing else is acknowledged without being stored; a failing handler
    neither fails the transaction nor stops the others."""
    got: list[str] = []

    async def broken(edu: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    async def handler(edu: dict[str, Any]) -> None:
        got.append(str(edu["type"]))

    inbox.on_ephemeral(broken)
    inbox.on_ephemeral(handler)
    client = TestClient(TestServer(inbox.app))
    await client.start_server()
    try:
        for txn, key in ((1, "ephemeral"), (2, "de.sorunome.msc2409.ephemeral")):
            async with client.put(
                f"/_matrix/app/v1/transactions/{txn}",
                json={"events": [], key: [{"type": "m.typing", "room_id": "!r"}]},
                headers={"Authorization": "Bearer h"},
            ) as r:
                assert r.status == 200, await r.text()
        for _ in range(50):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert got == ["m.typing", "m.typing"]
        assert await store.unprocessed_transactions() == []
    finally:
        await client.close()
