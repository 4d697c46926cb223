"""End-to-end chat latency through the bridge, against plain Synapse in the same run.

Run as ``python bench/chat_latency.py [--messages N]``. Starts one fresh product
stack (``buergerchat run``: Synapse + bridge) in a temporary folder and measures,
one message in flight at a time:

* citizen → staff: the citizen POSTs to the API, until Anna's /sync loop sees it;
* staff → citizen: Anna sends with matrix-nio, until the citizen's long-poll
  (``GET /events?after=…&timeout=25``, always running, as the widget keeps it)
  returns it;
* raw Synapse: two plain users in a plain room, A → B and B → A, each until the
  receiver's /sync loop sees the message.

The four directions take turns in every round, so drift over the run (caches,
database growth) hits bridge and baseline alike. Anna and the raw users are
ordinary rate-limited users (rc_message: 10/s, burst 50), so every round lasts
at least 1/8 s and each sends at most 8 messages a second; the citizen's ghost is
exempt. A table of p50/p95/p99 per direction and the bridge/raw ratios is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from nio import (
    AsyncClient,
    JoinError,
    RoomCreateResponse,
    RoomSendResponse,
    SyncResponse,
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge.homeserver import register_user  # noqa: E402
from tests.e2e.stack import Stack, make_stack  # noqa: E402

ANNA = "@anna.schmidt:buergerchat.localhost"
WARMUP = 5
ROUND_SECONDS = 1 / 8  # each rate-limited sender: at most 8 messages a second
ARRIVAL_TIMEOUT = 35.0  # longer than one long-poll, so a missed wake-up still shows
LONG_POLL_SECONDS = 25
SYNC_TIMEOUT_MS = 30_000
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60)


class Arrivals:
    """Futures for message bodies a receiver is expecting, resolved with the
    perf_counter time at which the receiver saw them."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[float]] = {}

    def expect(self, body: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[body] = future
        return future

    def seen(self, body: str | None, at: float) -> None:
        future = self._waiting.pop(body, None) if body else None
        if future is not None and not future.done():
            future.set_result(at)


class SyncWatcher(Arrivals):
    """A Matrix client's continuous /sync long-poll, as Element keeps one."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__()
        self.client = client
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        first = await self.client.sync(timeout=0, full_state=True)
        assert isinstance(first, SyncResponse), first
        self.task = asyncio.create_task(self._loop(), name=f"sync-{self.client.user}")

    async def _loop(self) -> None:
        while True:
            response = await self.client.sync(timeout=SYNC_TIMEOUT_MS)
            at = time.perf_counter()
            if not isinstance(response, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            for room in response.rooms.join.values():
                for event in room.timeline.events:
                    self.seen(getattr(event, "body", None), at)


class CitizenPoller(Arrivals):
    """The widget's side: one long-poll on the case's events, always re-issued."""

    def __init__(self, session: aiohttp.ClientSession, base: str, case: dict[str, Any]):
        super().__init__()
        self.session = session
        self.url = f"{base}/api/v1/cases/{case['case_id']}/events"
        self.headers = {"Authorization": f"Bearer {case['token']}"}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.session.get(self.url, headers=self.headers) as response:
            cursor = (await response.json())["next"]
        self.task = asyncio.create_task(self._loop(cursor), name="citizen-long-poll")

    async def _loop(self, cursor: str) -> None:
        while True:
            params = {"after": cursor, "timeout": str(LONG_POLL_SECONDS)}
            async with self.session.get(
                self.url, params=params, headers=self.headers
            ) as response:
                body = await response.json()
            at = time.perf_counter()
            for event in body["events"]:
                self.seen(event.get("body"), at)
            cursor = body["next"]


@dataclass
class Direction:
    name: str
    latencies: list[float] = field(default_factory=list)  # ms, until seen
    send_calls: list[float] = field(default_factory=list)  # ms, until send returned
    lost: int = 0


async def measure(
    direction: Direction | None,
    receiver: Arrivals,
    send: Callable[[str], Awaitable[None]],
) -> None:
    """Send one message and wait until the receiver sees it; record unless warm-up."""
    body = f"{direction.name if direction else 'warm-up'} {uuid.uuid4().hex}"
    arrived = receiver.expect(body)
    start = time.perf_counter()
    await send(body)
    sent = time.perf_counter()
    try:
        at = await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT)
    except TimeoutError:
        if direction is not None:
            direction.lost += 1
        return
    if direction is not None:
        direction.latencies.append((at - start) * 1000)
        direction.send_calls.append((sent - start) * 1000)


def nio_sender(client: AsyncClient, room_id: str) -> Callable[[str], Awaitable[None]]:
    async def send(body: str) -> None:
        response = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )
        assert isinstance(response, RoomSendResponse), response

    return send


def citizen_sender(
    session: aiohttp.ClientSession, base: str, case: dict[str, Any]
) -> Callable[[str], Awaitable[None]]:
    url = f"{base}/api/v1/cases/{case['case_id']}/messages"
    headers = {"Authorization": f"Bearer {case['token']}"}

    async def send(body: str) -> None:
        payload = {"body": body, "client_id": uuid.uuid4().hex}
        async with session.post(url, json=payload, headers=headers) as response:
            assert response.status == 201, (response.status, await response.text())

    return send


async def login(stack: Stack, mxid: str, password: str) -> AsyncClient:
    client = AsyncClient(stack.homeserver_url, mxid)
    response = await client.login(password)
    assert getattr(response, "access_token", None), response
    return client


async def join_case_room(client: AsyncClient, reference: str) -> str:
    """Sync until the invite to the case room arrives, then join it."""
    for _ in range(60):
        response = await client.sync(timeout=500)
        assert isinstance(response, SyncResponse), response
        for room_id, room in response.rooms.invite.items():
            names = [getattr(e, "name", None) or "" for e in room.invite_state]
            if any(reference in n for n in names):
                joined = await client.join(room_id)
                assert not isinstance(joined, JoinError), joined
                return room_id
    raise RuntimeError(f"Anna got no invite to the room of {reference}")


async def raw_pair(stack: Stack) -> tuple[AsyncClient, AsyncClient, str]:
    """Two plain users (not staff, not the bridge's) and a plain room of theirs."""
    secrets = yaml.safe_load((stack.data_dir / "secrets.yaml").read_text("utf-8"))
    shared = secrets["registration_shared_secret"]
    clients = []
    for local in ("bench_a", "bench_b"):
        password = uuid.uuid4().hex
        await register_user(stack.homeserver_url, shared, local, password)
        clients.append(await login(stack, f"@{local}:{stack.server_name}", password))
    a, b = clients
    created = await a.room_create(name="latency baseline", invite=[b.user_id])
    assert isinstance(created, RoomCreateResponse), created
    joined = await b.join(created.room_id)
    assert not isinstance(joined, JoinError), joined
    return a, b, created.room_id


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v, v
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def report(directions: list[Direction], messages: int, seconds: float) -> str:
    c2s, s2c, a2b, b2a = directions
    raw = Direction(
        "raw Synapse, both ways",
        a2b.latencies + b2a.latencies,
        a2b.send_calls + b2a.send_calls,
        a2b.lost + b2a.lost,
    )
    lines = [
        f"Chat latency, {messages} messages per direction, one in flight, "
        f"{WARMUP} warm-up rounds; measured part took {seconds:.1f} s.",
        "",
        f"{'direction':<26}{'count':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'lost':>6}{'send p50':>10}",
    ]
    for d in (c2s, s2c, a2b, b2a, raw):
        p50, p95, p99 = percentiles(d.latencies)
        send50 = percentiles(d.send_calls)[0]
        lines.append(
            f"{d.name:<26}{len(d.latencies):>6}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}"
            f"{d.lost:>6}{send50:>10.1f}"
        )
    raw50, raw95, _ = percentiles(raw.latencies)
    lines += ["", f"{'bridge / raw Synapse':<26}{'p50':>8}{'p95':>8}"]
    for d in (c2s, s2c):
        p50, p95, _ = percentiles(d.latencies)
        lines.append(f"{d.name:<26}{p50 / raw50:>7.2f}x{p95 / raw95:>7.2f}x")
    lines += [
        "",
        "Latency: from the send call until the receiver's /sync or long-poll returned",
        "the message. 'send p50': until the send call itself returned (the citizen",
        "POST answers once the message is in Synapse).",
    ]
    return "\n".join(lines)


async def bench(stack: Stack, messages: int) -> list[Direction]:
    directions = [
        Direction("citizen -> staff (bridge)"),
        Direction("staff -> citizen (bridge)"),
        Direction("raw A -> B (Synapse)"),
        Direction("raw B -> A (Synapse)"),
    ]
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(
            f"{stack.bridge_url}/api/v1/cases",
            json={"department": "buergerbuero", "consent": True, "name": "Bench"},
        ) as response:
            assert response.status == 201, await response.text()
            case = await response.json()
        anna = await login(stack, ANNA, stack.staff_password(ANNA))
        a, b, raw_room = await raw_pair(stack)
        watchers: list[SyncWatcher | CitizenPoller] = []
        citizen_send = citizen_sender(session, stack.bridge_url, case)
        try:
            case_room = await join_case_room(anna, case["reference"])
            anna_sync, a_sync, b_sync = (
                SyncWatcher(anna),
                SyncWatcher(a),
                SyncWatcher(b),
            )
            citizen = CitizenPoller(session, stack.bridge_url, case)
            watchers = [anna_sync, a_sync, b_sync, citizen]
            for watcher in watchers:
                await watcher.start()
            steps = [
                (anna_sync, citizen_send),
                (citizen, nio_sender(anna, case_room)),
                (b_sync, nio_sender(a, raw_room)),
                (a_sync, nio_sender(b, raw_room)),
            ]
            started = 0.0
            for i in range(WARMUP + messages):
                if i == WARMUP:
                    started = time.perf_counter()
                round_start = time.perf_counter()
                for direction, (receiver, send) in zip(directions, steps, strict=True):
                    await measure(direction if i >= WARMUP else None, receiver, send)
                left = ROUND_SECONDS - (time.perf_counter() - round_start)
                if left > 0:
                    await asyncio.sleep(left)
            print(report(directions, messages, time.perf_counter() - started))
        finally:
            for watcher in watchers:
                if watcher.task is not None:
                    watcher.task.cancel()
            await asyncio.gather(
                *(w.task for w in watchers if w.task), return_exceptions=True
            )
            # The bridge serves a long-poll whose client went away until its timeout,
            # and its shutdown waits for it (about 25 s); one more event ends it now.
            with contextlib.suppress(Exception):
                await citizen_send("bench finished")
            for client in (anna, a, b):
                await client.close()
    return directions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=200,
        help="measured messages per direction (default 200)",
    )
    args = parser.parse_args()
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    base = Path(tempfile.mkdtemp(prefix="bc-latency-"))
    stack = make_stack(base)
    try:
        began = time.perf_counter()
        stack.start()
        print(
            f"Stack up in {time.perf_counter() - began:.1f} s "
            f"(bridge {stack.bridge_url}, Synapse {stack.homeserver_url})."
        )
        directions = asyncio.run(bench(stack, args.messages))
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    lost = sum(d.lost for d in directions)
    if lost:
        print(f"{lost} message(s) never arrived within {ARRIVAL_TIMEOUT:.0f} s.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
