"""Opening cases against raw Synapse createRoom+invite, in the same run.

Starts one fresh stack (``buergerchat run``: Synapse + bridge, every department
live, loose abuse limits as in the e2e stacks) and measures, one after another:

- **raw Synapse**: a plain user's ``createRoom`` with one invitee (the smallest
  thing a case needs: a private room with someone in it), at concurrency 1 and 8;
- **bridge**: the citizen's ``POST /api/v1/cases`` until its ``201`` — the case,
  its token, the opening line, the citizen's ghost (registered, named) and the
  case room with ghost and staff — at concurrency 1 and 8;
- **flatness**: bridge throughput over the first 100 cases against the last 100,
  after ``--cases`` are open.

It prints cases/s, p50/p95 in ms and the bridge/raw ratios (issue "Scale":
throughput ≥ 0.8×, p95 ≤ 1.3× raw, flat to the 2,000th case).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    cpu_seconds,
    on_fresh_stack,
    open_chat,
    stack_processes,
)
from bridge.homeserver import register_user  # noqa: E402
from tests.e2e.stack import Stack, unlimited_rules  # noqa: E402

TIMEOUT = aiohttp.ClientTimeout(total=120)
Call = Callable[[], Awaitable[None]]


async def timed(call: Call, count: int, concurrency: int) -> tuple[float, list[float]]:
    """``count`` calls, ``concurrency`` at a time: seconds in all, and each's."""
    latencies: list[float] = []
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            began = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def raw_user(stack: Stack, session: aiohttp.ClientSession) -> tuple[str, str]:
    """A plain user's access token, and a second user to invite."""
    secrets = yaml.safe_load((stack.data_dir / "secrets.yaml").read_text("utf-8"))
    shared = secrets["registration_shared_secret"]
    users = []
    for local in ("bench_open_a", "bench_open_b"):
        password = uuid.uuid4().hex
        await register_user(
            stack.homeserver_url, shared, local, password, admin=local.endswith("a")
        )
        users.append((local, password))
    async with session.post(
        f"{stack.homeserver_url}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": users[0][0]},
            "password": users[0][1],
        },
    ) as response:
        token = (await response.json())["access_token"]
    # The bridge's appservice users are not rate-limited; neither is the
    # baseline (rc_invites would stop it after 5 invites of the same user).
    me = f"@{users[0][0]}:{stack.server_name}"
    async with session.post(
        f"{stack.homeserver_url}/_synapse/admin/v1/users/{me}/override_ratelimit",
        json={"messages_per_second": 0, "burst_count": 0},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"override_ratelimit: {response.status}")
    return token, f"@{users[1][0]}:{stack.server_name}"


def raw_create(
    stack: Stack, session: aiohttp.ClientSession, token: str, invitee: str
) -> Call:
    async def call() -> None:
        async with session.post(
            f"{stack.homeserver_url}/_matrix/client/v3/createRoom",
            json={"preset": "private_chat", "invite": [invitee], "name": "bench"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"createRoom: {response.status}")

    return call


def open_case(stack: Stack, session: aiohttp.ClientSession) -> Call:
    async def call() -> None:
        await open_chat(session, stack)

    return call


def line(label: str, count: int, seconds: float, latencies: list[float]) -> str:
    return (
        f"{label:<34} {count:>6} {count / seconds:>8.2f} "
        f"{pct(latencies, 50):>8.0f} {pct(latencies, 95):>8.0f}"
    )


async def bench(stack: Stack, count: int, total: int) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        token, invitee = await raw_user(stack, session)
        raw, bridge = (
            raw_create(stack, session, token, invitee),
            open_case(stack, session),
        )
        for call in (raw, bridge):  # warm up both
            await timed(call, 5, 1)
        print(
            f"{'':<34} {'count':>6} {'per s':>8} {'p50 ms':>8} {'p95 ms':>8}"
            f" {'CPU ms per case: Synapse':>25} {'bridge':>7}"
        )
        figures: dict[tuple[str, int], tuple[float, list[float]]] = {}
        assert stack.process is not None
        processes = stack_processes(stack.process.pid)
        for concurrency in (1, 8):
            for name, call in (("raw", raw), ("bridge", bridge)):
                before = cpu_seconds(processes)
                seconds, latencies = await timed(call, count, concurrency)
                # What Synapse still does for these (pushes to the bridge).
                await asyncio.sleep(2)
                used = cpu_seconds(processes)
                figures[name, concurrency] = (seconds, latencies)
                label = (
                    f"{name} createRoom+invite"
                    if name == "raw"
                    else f"{name} POST /cases"
                )
                print(
                    line(f"{label} c={concurrency}", count, seconds, latencies)
                    + "".join(
                        f" {(used[part] - before[part]) / count * 1000:>{width}.0f}"
                        for part, width in (("synapse", 25), ("bridge", 7))
                    )
                )
        for concurrency in (1, 8):
            raw_s, raw_l = figures["raw", concurrency]
            bridge_s, bridge_l = figures["bridge", concurrency]
            p50 = pct(bridge_l, 50) / pct(raw_l, 50)
            p95 = pct(bridge_l, 95) / pct(raw_l, 95)
            print(
                f"ratio bridge/raw c={concurrency}: throughput "
                f"{raw_s / bridge_s:.2f}x, p50 {p50:.2f}x, p95 {p95:.2f}x"
            )
        opened = 10 + 4 * count
        first_s, _ = figures["bridge", 8]
        while opened < total - count:
            step = min(500, total - count - opened)
            await timed(bridge, step, 8)
            opened += step
        last_s, last_l = await timed(bridge, count, 8)
        opened += count
        print(line(f"bridge c=8 at {opened} open cases", count, last_s, last_l))
        print(
            f"flatness: last {count} / first {count} throughput {first_s / last_s:.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="cases per measurement")
    parser.add_argument(
        "--cases", type=int, default=1000, help="open cases before the flatness check"
    )
    args = parser.parse_args()
    on_fresh_stack(
        "bc-open-",
        lambda stack: bench(stack, args.count, args.cases),
        edit_rules=unlimited_rules,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
