"""Several bridge processes on one PostgreSQL (bridge.cluster, bridge.peers):
each "process" here is a Cluster with an engine of its own on the same
database, as two real processes have. The two-process test with Synapse is
tests/e2e/test_two_bridges.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge import cluster as cluster_module
from bridge.cluster import PAYLOAD_MAX, Cluster
from bridge.db.engine import create_engine, migrate
from bridge.db.store import Store
from bridge.peers import join
from bridge.timeline import Notifier
from bridge.tokens import Tokens

from ...conftest import PG_DSN, empty_database
from .sample import until


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with empty_database("postgres", tmp_path, "bc_cluster") as engine:
        await migrate(engine)
        yield engine


def second_engine(engine: AsyncEngine) -> AsyncEngine:
    """Another process's own pool on the same database."""
    return create_engine(engine.url.render_as_string(hide_password=False))


@pytest.fixture
async def two(pg: AsyncEngine) -> AsyncIterator[tuple[Cluster, Cluster]]:
    other = second_engine(pg)
    a, b = Cluster(pg, "host-a:1:1:aa"), Cluster(other, "host-b:2:2:bb")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()
        await other.dispose()


async def test_a_notice_reaches_the_other_process_and_not_the_sender(
    two: tuple[Cluster, Cluster],
) -> None:
    a, b = two
    heard: dict[str, list[list[str]]] = {"a": [], "b": []}
    a.on("case", heard["a"].append)
    b.on("case", heard["b"].append)
    a.publish("case", "c_1", "7")
    await until(lambda: heard["b"])
    await asyncio.sleep(0.2)
    assert heard == {"a": [], "b": [["c_1", "7"]]}


async def test_a_burst_beyond_one_payload_arrives_whole_and_in_order(
    two: tuple[Cluster, Cluster],
) -> None:
    a, b = two
    heard: list[str] = []
    b.on("case", lambda args: heard.append(args[0]))
    sent = [f"c_{i:05d}_{'x' * 30}" for i in range(3000)]  # ~140 kB: many NOTIFYs
    assert sum(len(s) for s in sent) > 10 * PAYLOAD_MAX
    for case_id in sent:
        a.publish("case", case_id, "1")
    await until(lambda: len(heard) >= len(sent), 30)
    assert heard == sent


async def test_too_long_a_notice_is_refused_not_cut(
    two: tuple[Cluster, Cluster],
) -> None:
    a, b = two
    heard: list[list[str]] = []
    b.on("big", heard.append)
    a.publish("big", "x" * (PAYLOAD_MAX + 1))
    a.publish("big", "after")
    await until(lambda: heard)
    assert heard == [["after"]]


async def terminate_listener(cluster: Cluster) -> int:
    """Cut this process's listening connection (only its own: the other's
    reconnect would resync it by itself and hide what a test looks for)."""
    conn = await asyncpg.connect(f"{PG_DSN}/{cluster.engine.url.database}")
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = $2",
            cluster.engine.url.database,
            cluster.listener_app,
        )
    finally:
        await conn.close()
    return len(rows)


async def test_a_lost_listener_reconnects_and_makes_everyone_read_again(
    two: tuple[Cluster, Cluster],
) -> None:
    a, b = two
    resyncs: list[int] = []
    heard: list[list[str]] = []
    b.on_resync(lambda: resyncs.append(1))
    b.on("case", heard.append)
    assert await terminate_listener(b) == 1
    # Whatever was sent while B was away may be lost: B reads everything anew.
    await until(lambda: resyncs, 30)
    await until(lambda: b.listening.is_set() and a.listening.is_set(), 30)
    a.publish("case", "c_after", "9")
    await until(lambda: heard, 30)
    assert heard[-1] == ["c_after", "9"]


async def test_a_long_poll_in_one_process_wakes_for_a_write_in_the_other(
    pg: AsyncEngine, two: tuple[Cluster, Cluster]
) -> None:
    """bridge.peers wiring: a cursor, a revoked token and an erased case."""
    a, b = two
    sides = []
    for cluster in (a, b):
        store = Store(cluster.engine)
        fake_az = SimpleNamespace(
            hand_on_ephemeral=lambda edu: None,
            wake=lambda: None,
            forget=_forgot,
            peers_stored=None,
            peers_ephemeral=None,
        )
        cases = SimpleNamespace(notifier=Notifier(), tokens=Tokens(store, CITIZEN))
        # As CaseService.forget does (signals are not looked at here).
        cases.forget = partial(forget_case, cases)
        join(cluster, cases, fake_az)  # type: ignore[arg-type]
        sides.append(cases)
    here, there = sides
    waiting = there.notifier.subscribe("c_1")
    there.notifier.read("c_1", 5, None)  # B knows nothing lies beyond 5
    assert there.notifier.nothing_after("c_1", 5)
    here.notifier.notify("c_1", 6)
    await asyncio.wait_for(waiting, 10)
    assert not there.notifier.nothing_after("c_1", 5)  # B reads the new one
    assert there.notifier.nothing_after("c_1", 6)

    there.tokens._trusted[("hash", "c_2")] = (1e12, None)  # type: ignore[assignment]
    a.publish("token", "c_2")
    await until(lambda: not there.tokens._trusted)

    there.notifier.read("c_3", 4, None)
    a.publish("erased", "c_3", "!room:x", "@bc_1:x")
    await until(lambda: not there.notifier.nothing_after("c_3", 4))
    await until(lambda: ("!room:x", "@bc_1:x") in FORGOTTEN)


def forget_case(cases: Any, case_id: str) -> None:
    cases.tokens.forget(case_id)
    cases.notifier.forget(case_id)


CITIZEN: Any = SimpleNamespace(token_ttl_hours=1, resume_link_ttl_days=1)
FORGOTTEN: list[tuple[str | None, str]] = []


async def _forgot(room_id: str | None, user_id: str) -> None:
    FORGOTTEN.append((room_id, user_id))


async def test_one_lease_holder_and_the_next_takes_over(pg: AsyncEngine) -> None:
    other = second_engine(pg)
    try:
        ttl = timedelta(seconds=1.5)
        a = Cluster(pg, "a").lease("inbox", ttl)
        b = Cluster(other, "b").lease("inbox", ttl)
        gained: list[str] = []
        b.on_gained = lambda: gained.append("b")
        assert await a.try_take()
        assert not await b.try_take()
        assert await a.try_take()  # renewing is taking again
        assert await b.holder_now() == "a"
        await a.stop()  # handed back: B need not wait
        assert await b.try_take() and gained == ["b"]
        # B dies without handing back: A waits until B's lease ran out.
        assert not await a.try_take()
        await asyncio.sleep(ttl.total_seconds() + 0.2)
        assert not b.held  # B itself no longer counts on it either
        assert await a.try_take()
    finally:
        await other.dispose()


async def test_the_routing_lock_excludes_the_other_process_and_dies_with_it(
    two: tuple[Cluster, Cluster],
) -> None:
    a, b = two
    order: list[str] = []
    a_in = asyncio.Event()
    release = asyncio.Event()

    async def hold_a() -> None:
        async with a.lock("routing"):
            order.append("a in")
            a_in.set()
            await release.wait()
            order.append("a out")

    async def then_b() -> None:
        await a_in.wait()
        async with b.lock("routing"):
            order.append("b in")

    holder = asyncio.create_task(hold_a())
    waiter = asyncio.create_task(then_b())
    await a_in.wait()
    await asyncio.sleep(0.5)
    assert order == ["a in"]  # B waits on PostgreSQL, not on a local lock
    release.set()
    await asyncio.gather(holder, waiter)
    assert order == ["a in", "a out", "b in"]

    # A holder cancelled mid-decision (a crash of its task) frees the lock.
    stuck = asyncio.Event()

    async def cancelled() -> None:
        async with a.lock("routing"):
            stuck.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(cancelled())
    await stuck.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):
        async with b.lock("routing"):
            pass


async def test_one_process_on_sqlite_needs_none_of_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    await migrate(engine)
    try:
        cluster = Cluster(engine, "only")
        await cluster.start()
        assert not cluster.shared
        cluster.publish("case", "c_1", "1")  # nobody to tell: nothing kept
        assert cluster._outbox == []
        async with asyncio.timeout(5):
            async with cluster.lock("routing"):
                pass
        lease = cluster.lease("inbox")
        assert await lease.try_take() and lease.held
        await cluster.stop()
    finally:
        await engine.dispose()


async def test_notices_beyond_the_outbox_make_the_others_read_again(
    two: tuple[Cluster, Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose listener is away keeps at most OUTBOX_MAX notices; past
    that it drops them and, once back, tells the others to read everything
    again instead of leaving their long-polls waiting."""
    a, b = two
    monkeypatch.setattr(cluster_module, "OUTBOX_MAX", 5)
    resyncs: list[int] = []
    heard: list[list[str]] = []
    b.on_resync(lambda: resyncs.append(1))
    b.on("case", heard.append)
    assert await terminate_listener(a) == 1
    await until(lambda: not a.listening.is_set(), 10)
    for n in range(12):
        a.publish("case", f"c_{n}", "1")
    await until(lambda: resyncs, 30)  # B was told by A, its own listener never left
    await until(lambda: heard, 30)
    # The twelve overflowed the five kept twice; what was kept after is sent.
    assert [args[0] for args in heard] == ["c_10", "c_11"]
