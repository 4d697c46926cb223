"""Many connected widgets: staff → citizen delivery while thousands of long-polls
are held, against raw Synapse /sync in the same run.

Starts one fresh stack (every department live, loose abuse limits), opens
``--cases`` chats and keeps ``--widgets`` long-polls on them (each re-issued at
once when it returns, as the widget does; all started together, so they come back
as a herd whenever their case has news). Anna joins a few case rooms and, taking
turns with a raw Synapse pair (A → B, B on a continuous /sync), sends
``--messages`` messages; each is timed until every widget of its case has it.
Prints the latency percentiles of both, their ratio, errors, and the bridge's
resident memory (issue "Scale": no errors, p95 ≤ 1.5× raw /sync p95, RSS ≤ 400 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chat_latency import (  # noqa: E402
    SyncWatcher,
    login,
    nio_sender,
    percentiles,
    raw_pair,
)
from bench.common import on_fresh_stack, open_chat  # noqa: E402
from tests.e2e.stack import LOOSE_LIMITS, Stack, unlimited_rules  # noqa: E402

ANNA = "@anna.schmidt:buergerchat.localhost"
LONG_POLL_SECONDS = 25
ARRIVAL_TIMEOUT = 60.0


class Widgets:
    """``count`` long-polls spread over the cases; records when each widget
    sees each message body."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, mode: str = "poll"
    ) -> None:
        self.session, self.base, self.mode = session, base, mode
        self.seen: defaultdict[str, list[float]] = defaultdict(list)
        self.errors = 0
        self.why: defaultdict[str, int] = defaultdict(int)
        #: Widgets that got their first answer (connected and served once).
        self.answered: set[int] = set()
        self.polls = 0
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, cases: list[dict[str, Any]], count: int) -> None:
        for n in range(count):
            case = cases[n % len(cases)]
            loop = self._stream if self.mode == "sse" else self._loop
            self.tasks.append(asyncio.create_task(loop(case, n)))

    async def _stream(self, case: dict[str, Any], n: int) -> None:
        """As the widget does with Server-Sent Events: one held response,
        a new one from the last id when it ends."""
        url = f"{self.base}/api/v1/cases/{case['case_id']}/stream"
        cursor = case["cursor"]
        while True:
            headers = {
                "Authorization": f"Bearer {case['token']}",
                "Last-Event-ID": cursor,
            }
            try:
                async with self.session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
                ) as response:
                    if response.status != 200:
                        self.errors += 1
                        self.why[f"HTTP {response.status}"] += 1
                        await asyncio.sleep(1)
                        continue
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("id: "):
                            cursor = line[4:]
                        if not line.startswith("data: "):
                            continue
                        at = time.perf_counter()
                        self.polls += 1
                        self.answered.add(n)
                        for event in json.loads(line[6:])["events"]:
                            self.seen[event.get("body") or ""].append(at)
            except (aiohttp.ClientError, TimeoutError) as e:
                self.errors += 1
                self.why[type(e).__name__] += 1
                await asyncio.sleep(1)

    async def _loop(self, case: dict[str, Any], n: int) -> None:
        url = f"{self.base}/api/v1/cases/{case['case_id']}/events"
        headers = {"Authorization": f"Bearer {case['token']}"}
        cursor = case["cursor"]
        while True:
            params = {"after": cursor, "timeout": str(LONG_POLL_SECONDS)}
            try:
                async with self.session.get(
                    url, params=params, headers=headers
                ) as response:
                    body = await response.json()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                self.errors += 1
                await asyncio.sleep(1)
                continue
            at = time.perf_counter()
            self.polls += 1
            self.answered.add(n)
            if not ok:
                self.errors += 1
                await asyncio.sleep(1)
                continue
            for event in body["events"]:
                self.seen[event.get("body") or ""].append(at)
            cursor = body["next"]


async def join_rooms(client: Any, references: list[str]) -> list[str]:
    """Join the case rooms of ``references`` (their invites may come in one
    sync or several), in that order."""
    found: dict[str, str] = {}
    for _ in range(60):
        response = await client.sync(timeout=500)
        for room_id, room in response.rooms.invite.items():
            names = " ".join(getattr(e, "name", None) or "" for e in room.invite_state)
            for reference in references:
                if reference in names:
                    found[reference] = room_id
        if len(found) == len(references):
            break
    rooms = [found[r] for r in references]
    for room_id in rooms:
        await client.join(room_id)
    return rooms


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def open_cases(
    session: aiohttp.ClientSession, stack: Stack, count: int
) -> list[dict[str, Any]]:
    cases = []
    for _ in range(count):
        case = await open_chat(session, stack, "Widget")
        async with session.get(
            f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/events",
            headers={"Authorization": f"Bearer {case['token']}"},
        ) as response:
            case["cursor"] = (await response.json())["next"]
        cases.append(case)
    return cases


async def bench(
    stack: Stack, widgets: int, cases_n: int, messages: int, mode: str
) -> int:
    assert stack.process is not None
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        cases = await open_cases(session, stack, cases_n)
        anna = await login(stack, ANNA, stack.staff_password(ANNA))
        a, b, raw_room = await raw_pair(stack)
        rooms = await join_rooms(anna, [c["reference"] for c in cases[:5]])
        b_sync = SyncWatcher(b)
        await b_sync.start()
        crowd = Widgets(session, stack.bridge_url, mode)
        began = time.perf_counter()
        crowd.start(cases, widgets)
        # Measured once every widget was answered once: for streams their first
        # message, for long-polls the first timeout (then they come back as
        # one herd, the case the issue names).
        deadline = time.perf_counter() + 120
        while len(crowd.answered) < widgets:  # noqa: ASYNC110 (polling)
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.1)
        print(f"{len(crowd.answered)} of {widgets} widgets answered before it began")
        per_case = widgets // cases_n
        bridge_ms: list[float] = []
        raw_ms: list[float] = []
        lost = 0
        try:
            for i in range(messages):
                body = f"staff {i} {uuid.uuid4().hex}"
                start = time.perf_counter()
                await nio_sender(anna, rooms[i % len(rooms)])(body)
                deadline = start + ARRIVAL_TIMEOUT
                while len(crowd.seen[body]) < per_case:  # noqa: ASYNC110 (polling)
                    if time.perf_counter() > deadline:
                        break
                    await asyncio.sleep(0.01)
                arrived = crowd.seen.pop(body, [])
                lost += per_case - min(per_case, len(arrived))
                bridge_ms += [(at - start) * 1000 for at in arrived]
                raw_body = f"raw {i} {uuid.uuid4().hex}"
                seen = b_sync.expect(raw_body)
                start = time.perf_counter()
                await nio_sender(a, raw_room)(raw_body)
                try:
                    raw_ms.append(
                        (await asyncio.wait_for(seen, ARRIVAL_TIMEOUT) - start) * 1000
                    )
                except TimeoutError:
                    lost += 1
                await asyncio.sleep(0.25)
            held = time.perf_counter() - began
            print(
                f"{widgets} widgets ({mode}) on {cases_n} cases ({per_case} each), "
                f"held {held:.0f} s, {crowd.polls} answers, {crowd.errors} errors, "
                f"{lost} deliveries missing"
            )
            if crowd.why:
                print("errors by kind:", dict(crowd.why))
            b50, b95, b99 = percentiles(bridge_ms)
            r50, r95, r99 = percentiles(raw_ms)
            print(
                f"staff -> every widget of the case: p50 {b50:.0f} ms, "
                f"p95 {b95:.0f} ms, p99 {b99:.0f} ms ({len(bridge_ms)} arrivals)"
            )
            print(
                f"raw A -> B /sync: p50 {r50:.0f} ms, p95 {r95:.0f} ms, "
                f"p99 {r99:.0f} ms ({len(raw_ms)} messages)"
            )
            rss = rss_mb(stack.process.pid)
            print(f"ratio p95 bridge/raw: {b95 / r95:.2f}x; bridge RSS {rss:.0f} MB")
            return 1 if crowd.errors or lost else 0
        finally:
            for task in crowd.tasks:
                task.cancel()
            await asyncio.gather(*crowd.tasks, return_exceptions=True)
            if b_sync.task is not None:
                b_sync.task.cancel()
            for client in (anna, a, b):
                await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widgets", type=int, default=5000)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument(
        "--mode",
        choices=("poll", "sse"),
        default="sse",
        help="long-polls (the fallback) or Server-Sent Events (the widget's default)",
    )
    args = parser.parse_args()
    return on_fresh_stack(
        "bc-widgets-",
        lambda stack: bench(stack, args.widgets, args.cases, args.messages, args.mode),
        edit_rules=unlimited_rules,
        limits={
            **LOOSE_LIMITS,
            "polls_per_token": 1_000_000,
            "polls_per_address": 1_000_000,
            "burst_chats": 1_000_000,
        },
    )


if __name__ == "__main__":
    sys.exit(main())
