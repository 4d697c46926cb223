"""What one address achieves against the shipped abuse limits, next to what a
real citizen needs — and that a citizen's conversation in parallel is not
slowed.

Run as ``python bench/abuse_bench.py [--seconds N]``. Starts one product stack
(``buergerchat run``: Synapse, clamd, bridge) with the default limits, behind
127.0.0.1 as trusted proxy so X-Forwarded-For stands for the addresses. For
``--seconds`` (default 60) one attacker address, as fast as it can:

* opens chats (``POST /cases``),
* floods one case with messages,
* holds long-polls of one token (and of many tokens from its address),
* sends offline messages naming one victim's e-mail address from many addresses;

and one citizen (another address) writes every 4 s and reads their timeline
twice a second in their own chat, first alone (baseline), then during the
attack. Printed: what the attacker got, the limits a real citizen stays far
below, and the citizen's latencies p50/p95 alone and under attack (ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.stack import Stack, make_stack  # noqa: E402

TIMEOUT = aiohttp.ClientTimeout(total=60)


async def call(
    session: aiohttp.ClientSession,
    stack: Stack,
    method: str,
    path: str,
    address: str,
    token: str | None = None,
    json: Any = None,
) -> tuple[int, Any]:
    headers = {"X-Forwarded-For": address}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with session.request(
        method, stack.bridge_url + path, headers=headers, json=json
    ) as response:
        return response.status, await response.json()


async def chat(session: aiohttp.ClientSession, stack: Stack, address: str) -> Any:
    return await call(
        session,
        stack,
        "POST",
        "/api/v1/cases",
        address,
        json={"department": "buergerbuero", "consent": True, "name": "X"},
    )


async def flood_chats(
    session: aiohttp.ClientSession, stack: Stack, until: float
) -> int:
    got = 0
    while time.monotonic() < until:
        status, _ = await chat(session, stack, "198.51.100.66")
        got += status == 201
        await asyncio.sleep(0.05)
    return got


async def flood_messages(
    session: aiohttp.ClientSession, stack: Stack, case: Any, until: float
) -> tuple[int, int]:
    taken = tried = 0
    while time.monotonic() < until:
        tried += 1
        status, _ = await call(
            session,
            stack,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            "198.51.100.66",
            case["token"],
            {"body": f"spam {tried}", "client_id": uuid.uuid4().hex},
        )
        taken += status in (201, 202)
    return taken, tried


async def hold_polls(session: aiohttp.ClientSession, stack: Stack, case: Any) -> int:
    async def poll() -> int:
        status, _ = await call(
            session,
            stack,
            "GET",
            f"/api/v1/cases/{case['case_id']}/events?after=999999&timeout=5",
            "198.51.100.66",
            case["token"],
        )
        return status

    statuses = await asyncio.gather(*(poll() for _ in range(50)))
    return sum(s == 200 for s in statuses)


async def victim_mails(session: aiohttp.ClientSession, stack: Stack) -> int:
    for n in range(20):
        await call(
            session,
            stack,
            "POST",
            "/api/v1/offline-messages",
            f"203.0.113.{n + 1}",
            json={
                "client_id": str(uuid.uuid4()),
                "topic": "personalausweis",
                "description": "x",
                "name": "x",
                "email": "victim@example.org",
                "consent": True,
            },
        )
    await asyncio.sleep(5)
    folder = stack.data_dir / "mail"
    return sum(
        1
        for p in folder.rglob("*")
        if p.is_file()
        and "victim@example.org" in str(message_from_bytes(p.read_bytes())["To"])
    )


async def citizen(
    session: aiohttp.ClientSession, stack: Stack, until: float
) -> tuple[list[float], list[float]]:
    """A person in their own chat: writes every 4 s (faster than anyone types
    a message), and reads the timeline every 0.5 s; latencies in ms."""
    status, case = await chat(session, stack, f"192.0.2.{uuid.uuid4().int % 200}")
    assert status == 201, case
    sends: list[float] = []
    reads: list[float] = []
    n = 0
    while time.monotonic() < until:
        n += 1
        started = time.perf_counter()
        status, body = await call(
            session,
            stack,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            "192.0.2.10",
            case["token"],
            {"body": f"Frage {n}", "client_id": uuid.uuid4().hex},
        )
        assert status in (201, 202), body
        sends.append((time.perf_counter() - started) * 1000)
        for _ in range(8):
            started = time.perf_counter()
            status, body = await call(
                session,
                stack,
                "GET",
                f"/api/v1/cases/{case['case_id']}/events?after=0",
                "192.0.2.10",
                case["token"],
            )
            assert status == 200, body
            reads.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.5)
    return sends, reads


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else 0


async def run(seconds: float) -> None:
    base = Path(tempfile.mkdtemp(prefix="bc-abuse-"))
    stack = make_stack(base, limits={"trusted_proxies": ["127.0.0.1", "::1"]})
    stack.start()
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            alone = await citizen(session, stack, time.monotonic() + seconds)
            status, target = await chat(session, stack, "198.51.100.67")
            assert status == 201, target
            until = time.monotonic() + seconds
            chats, (taken, tried), polls, parallel = await asyncio.gather(
                flood_chats(session, stack, until),
                flood_messages(session, stack, target, until),
                hold_polls(session, stack, target),
                citizen(session, stack, until),
            )
            mails = await victim_mails(session, stack)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"attack for {seconds:.0f} s from one address, default limits:")
    print(f"  new chats taken:        {chats} (limit 3/minute, 10/hour)")
    print("    a citizen needs 1-3 chats")
    print(
        f"  messages into one case: {taken} of {tried} taken = "
        f"{taken / seconds:.2f}/s (limit 20/minute; a person types < 0.2/s)"
    )
    print(f"  long-polls held at once by one token: {polls} of 50 (limit 3)")
    print(
        f"  confirmations to one victim from 20 offline messages: {mails} (limit 3/day)"
    )
    print("a citizen in parallel (own address; a message every 4 s, reads 2/s):")
    for what, before, during in (
        ("sends", alone[0], parallel[0]),
        ("reads", alone[1], parallel[1]),
    ):
        a50, a95 = pct(before, 50), pct(before, 95)
        p50, p95 = pct(during, 50), pct(during, 95)
        print(
            f"  {what}: alone p50 {a50:.1f} ms p95 {a95:.1f} ms ({len(before)}); "
            f"under attack p50 {p50:.1f} ms p95 {p95:.1f} ms ({len(during)}); "
            f"ratio p50 {p50 / a50:.2f}x p95 {p95 / a95:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
