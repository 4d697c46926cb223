"""Message throughput both ways at a concurrency, against raw Synapse doing the
same work in the same run (issue "Scale": citizen → staff ≥ 0.85× raw send
throughput at concurrency 16, staff → citizen ≥ 0.95×).

- **citizen → staff**: ``--concurrency`` citizens (one case each) post
  ``--messages`` messages in all through ``POST /api/v1/cases/{id}/messages``;
  each answer ``201`` means the message is in the Synapse room. Raw: a plain
  user sends as many ``PUT /rooms/{id}/send`` into as many rooms, as many at a
  time.
- **staff → citizen**: Anna sends into the case rooms, as many at a time, and the
  clock stops when the last message is in every citizen's event stream (one
  Server-Sent Events stream per case). Raw: the plain user sends into its rooms
  and the clock stops when the last is in the other user's ``/sync``.

Synapse's rate limits are lifted for the senders (admin API), as the bridge's
own users are not limited; the abuse limits are the e2e stacks' loose ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import on_fresh_stack, open_chat  # noqa: E402
from bridge.homeserver import ADMIN_TOKEN_KEY, register_user  # noqa: E402
from tests.e2e.stack import Stack, unlimited_rules  # noqa: E402

ANNA = "@anna.schmidt:buergerchat.localhost"
Send = Callable[[int, str], Awaitable[None]]


async def run(concurrency: int, total: int, send: Send) -> float:
    """``total`` sends by ``concurrency`` workers (worker ``w`` uses lane ``w``);
    seconds in all."""
    left = iter(range(total))

    async def worker(lane: int) -> None:
        for n in left:
            await send(lane, f"tp {n} {uuid.uuid4().hex[:8]}")

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return time.perf_counter() - began


class Matrix:
    """A user over plain HTTP (as little client work as possible)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as response:
            answer = await response.json()
            assert response.status == 200, (path, response.status, answer)
            return answer

    async def send(self, room_id: str, body: str) -> None:
        await self.call(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
            {"msgtype": "m.text", "body": body},
        )


async def user(
    stack: Stack, session: aiohttp.ClientSession, local: str, password: str | None
) -> tuple[Matrix, str]:
    secrets = yaml.safe_load((stack.data_dir / "secrets.yaml").read_text("utf-8"))
    if password is None:
        password = uuid.uuid4().hex
        await register_user(
            stack.homeserver_url, secrets["registration_shared_secret"], local, password
        )
    async with session.post(
        f"{stack.homeserver_url}/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": local},
            "password": password,
        },
    ) as response:
        login = await response.json()
    mxid = login["user_id"]
    admin = Matrix(session, stack.homeserver_url, secrets[ADMIN_TOKEN_KEY])
    await admin.call(
        "POST",
        f"/_synapse/admin/v1/users/{mxid}/override_ratelimit",
        {"messages_per_second": 0, "burst_count": 0},
    )
    return Matrix(session, stack.homeserver_url, login["access_token"]), mxid


async def bench(stack: Stack, concurrency: int, total: int) -> None:
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        cases = [await open_chat(session, stack) for _ in range(concurrency)]
        anna, _ = await user(stack, session, "anna.schmidt", stack.staff_password(ANNA))
        rooms = await case_rooms(anna, [c["reference"] for c in cases])
        a, _ = await user(stack, session, "tp_a", None)
        b, b_id = await user(stack, session, "tp_b", None)
        raw_rooms = []
        for _ in range(concurrency):
            made = await a.call(
                "POST", "/_matrix/client/v3/createRoom", {"invite": [b_id]}
            )
            await b.call("POST", f"/_matrix/client/v3/join/{made['room_id']}", {})
            raw_rooms.append(made["room_id"])

        async def citizen(lane: int, body: str) -> None:
            case = cases[lane]
            async with session.post(
                f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/messages",
                json={"body": body, "client_id": uuid.uuid4().hex},
                headers={"Authorization": f"Bearer {case['token']}"},
            ) as response:
                assert response.status == 201, await response.text()

        async def raw(lane: int, body: str) -> None:
            await a.send(raw_rooms[lane], body)

        await run(concurrency, concurrency * 2, citizen)  # warm-up
        await run(concurrency, concurrency * 2, raw)
        results = {}
        results["citizen -> staff"] = total / await run(concurrency, total, citizen)
        results["raw send"] = total / await run(concurrency, total, raw)

        # Staff -> citizen, until the last is in every citizen's stream.
        arrived: set[str] = set()
        streams = [
            asyncio.create_task(follow(session, stack, case, arrived)) for case in cases
        ]
        await asyncio.sleep(2)

        async def staff(lane: int, body: str) -> None:
            sent.append(body)
            await anna.send(rooms[lane], body)

        sent: list[str] = []
        began = time.perf_counter()
        await run(concurrency, total, staff)
        while not set(sent) <= arrived:  # noqa: ASYNC110 (polling)
            await asyncio.sleep(0.005)
        results["staff -> citizen"] = total / (time.perf_counter() - began)
        for task in streams:
            task.cancel()

        seen: set[str] = set()
        watcher = asyncio.create_task(raw_sync(b, seen))
        await asyncio.sleep(2)
        sent = []

        async def raw_both(lane: int, body: str) -> None:
            sent.append(body)
            await a.send(raw_rooms[lane], body)

        began = time.perf_counter()
        await run(concurrency, total, raw_both)
        while not set(sent) <= seen:  # noqa: ASYNC110 (polling)
            await asyncio.sleep(0.005)
        results["raw send -> /sync"] = total / (time.perf_counter() - began)
        watcher.cancel()

    print(f"{total} messages at concurrency {concurrency}:")
    for name, rate in results.items():
        print(f"  {name:20} {rate:7.1f} msg/s")
    print(
        "  ratio citizen -> staff / raw send: "
        f"{results['citizen -> staff'] / results['raw send']:.2f}x; "
        "staff -> citizen / raw send -> /sync: "
        f"{results['staff -> citizen'] / results['raw send -> /sync']:.2f}x"
    )


async def case_rooms(anna: Matrix, references: list[str]) -> list[str]:
    """Anna joins the case rooms of ``references``; their ids in that order."""
    found: dict[str, str] = {}
    since = None
    for _ in range(120):
        path = "/_matrix/client/v3/sync?timeout=1000" + (
            f"&since={since}" if since else ""
        )
        answer = await anna.call("GET", path)
        since = answer["next_batch"]
        for room_id, room in answer.get("rooms", {}).get("invite", {}).items():
            names = json.dumps(room)
            for reference in references:
                if reference in names and reference not in found:
                    await anna.call("POST", f"/_matrix/client/v3/join/{room_id}", {})
                    found[reference] = room_id
        if len(found) == len(references):
            return [found[r] for r in references]
    raise RuntimeError(f"invites missing: {set(references) - set(found)}")


async def follow(
    session: aiohttp.ClientSession, stack: Stack, case: dict[str, Any], into: set[str]
) -> None:
    async with session.get(
        f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/stream",
        headers={"Authorization": f"Bearer {case['token']}"},
        timeout=aiohttp.ClientTimeout(total=None),
    ) as response:
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                for event in json.loads(line[6:])["events"]:
                    into.add(event.get("body") or "")


async def raw_sync(b: Matrix, into: set[str]) -> None:
    since = None
    while True:
        path = "/_matrix/client/v3/sync?timeout=30000" + (
            f"&since={since}" if since else ""
        )
        answer = await b.call("GET", path)
        since = answer["next_batch"]
        for room in answer.get("rooms", {}).get("join", {}).values():
            for event in room.get("timeline", {}).get("events", []):
                into.add(event.get("content", {}).get("body") or "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--messages", type=int, default=800)
    args = parser.parse_args()
    on_fresh_stack(
        "bc-throughput-",
        lambda stack: bench(stack, args.concurrency, args.messages),
        edit_rules=unlimited_rules,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
