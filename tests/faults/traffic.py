"""Traffic both ways through the real product while processes are stopped and
killed, and the count afterwards: lost, twice, out of order.

Used by the fault-injection tests (a few hundred messages) and by
``bench/fault_soak.py`` (10,000 each way). Synapse is the truth for what staff
sent; what the citizen API accepted is the truth for what citizens sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.e2e.stack import Stack

ANNA = "@anna.schmidt:buergerchat.localhost"
TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass
class Case:
    case_id: str
    reference: str
    token: str
    room_id: str = ""
    sent_by_citizen: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """The verdict for one direction of one case."""

    expected: list[str]
    seen: list[str]

    @property
    def lost(self) -> list[str]:
        have = set(self.seen)
        return [b for b in self.expected if b not in have]

    @property
    def twice(self) -> list[str]:
        return [b for b, n in Counter(self.seen).items() if n > 1]

    @property
    def out_of_order(self) -> int:
        """Messages seen in another relative order than expected."""
        position = {b: i for i, b in enumerate(self.expected)}
        order = [position[b] for b in dict.fromkeys(self.seen) if b in position]
        return sum(1 for a, b in zip(order, order[1:], strict=False) if b < a)


class Traffic:
    """Citizens writing through the API and staff writing through Synapse."""

    def __init__(self, stack: Stack, *, prefix: str = "") -> None:
        self.stack = stack
        self.prefix = prefix or uuid.uuid4().hex[:6]
        self.cases: list[Case] = []
        self.staff_token = ""
        self.staff_uncertain = 0
        self.staff_sent = 0
        self.citizen_retries = 0

    # --- set-up -------------------------------------------------------------------

    async def login_staff(self) -> None:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": ANNA},
            "password": self.stack.staff_password(ANNA),
        }
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            async with s.post(
                f"{self.stack.homeserver_url}/_matrix/client/v3/login", json=body
            ) as r:
                data = await r.json()
                assert r.status == 200, data
        self.staff_token = data["access_token"]

    async def open_cases(self, count: int) -> None:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            for i in range(count):
                async with s.post(
                    f"{self.stack.bridge_url}/api/v1/cases",
                    json={
                        "department": "buergerbuero",
                        "consent": True,
                        "name": f"Fault {self.prefix} {i}",
                    },
                ) as r:
                    data = await r.json()
                    assert r.status == 201, data
                case = Case(data["case_id"], data["reference"], data["token"])
                case.room_id = await self._room_of(s, case)
                await self._staff(s, "POST", f"/join/{quote(case.room_id)}", {})
                self.cases.append(case)

    async def _room_of(self, s: aiohttp.ClientSession, case: Case) -> str:
        alias = quote(f"#bc_case_{case.case_id}:{self.stack.server_name}")
        for _ in range(100):
            status, data = await self._staff(s, "GET", f"/directory/room/{alias}")
            if status == 200:
                return str(data["room_id"])
            await asyncio.sleep(0.2)
        raise AssertionError(f"no room for {case.reference}")

    async def _staff(
        self, s: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        async with s.request(
            method,
            f"{self.stack.homeserver_url}/_matrix/client/v3{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.staff_token}"},
        ) as r:
            return r.status, await r.json(content_type=None)

    # --- writing --------------------------------------------------------------------

    async def citizen_writes(
        self,
        case: Case,
        count: int,
        pause: float = 0.02,
        stop: asyncio.Event | None = None,
        deadline: float = 300,
    ) -> None:
        """Up to ``count`` messages (fewer once ``stop`` is set), each retried with
        its client id until accepted (the bridge may be down for a while)."""
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            for _ in range(count):
                if stop is not None and stop.is_set():
                    return
                body = f"C {self.prefix} {case.reference} {len(case.sent_by_citizen)}"
                client_id = uuid.uuid4().hex
                give_up = time.monotonic() + deadline
                while True:
                    try:
                        async with s.post(
                            f"{self.stack.bridge_url}/api/v1/cases/{case.case_id}"
                            "/messages",
                            json={"body": body, "client_id": client_id},
                            headers={"Authorization": f"Bearer {case.token}"},
                        ) as r:
                            if r.status in (201, 202):
                                break
                            assert r.status >= 500, (r.status, await r.text())
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    self.citizen_retries += 1
                    assert time.monotonic() < give_up, "bridge did not come back"
                    await asyncio.sleep(0.2)
                case.sent_by_citizen.append(body)
                await asyncio.sleep(pause)

    async def staff_writes(
        self, count: int, pause: float = 0.02, stop: asyncio.Event | None = None
    ) -> None:
        """Up to ``count`` staff messages round the cases (fewer once ``stop`` is
        set); a send that fails is not repeated (what Synapse has decides what
        the citizen must see)."""
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            for n in range(count):
                if stop is not None and stop.is_set():
                    return
                case = self.cases[n % len(self.cases)]
                txn = uuid.uuid4().hex
                body = {"msgtype": "m.text", "body": f"S {self.prefix} {n}"}
                try:
                    status, _ = await self._staff(
                        s,
                        "PUT",
                        f"/rooms/{quote(case.room_id)}/send/m.room.message/{txn}",
                        body,
                    )
                    if status != 200:
                        self.staff_uncertain += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.staff_uncertain += 1
                    await asyncio.sleep(0.2)
                self.staff_sent += 1
                await asyncio.sleep(pause)

    # --- counting -------------------------------------------------------------------

    async def room_history(self, case: Case) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            token = None
            while True:
                query = "dir=f&limit=1000" + (f"&from={quote(token)}" if token else "")
                status, data = await self._staff(
                    s, "GET", f"/rooms/{quote(case.room_id)}/messages?{query}"
                )
                assert status == 200, data
                events += data.get("chunk", [])
                token = data.get("end")
                if not data.get("chunk") or not token:
                    return events

    async def run(
        self, faults: Any, *, per_case: int, staff: int, pause: float = 0.02
    ) -> None:
        """Write both ways while ``faults()`` runs; stop writing when it is done."""
        stop = asyncio.Event()
        writers = [
            asyncio.create_task(self.citizen_writes(c, per_case, pause, stop))
            for c in self.cases
        ]
        writers.append(asyncio.create_task(self.staff_writes(staff, pause, stop)))
        try:
            await faults()
            await asyncio.sleep(1)
        finally:
            stop.set()
        await asyncio.gather(*writers)

    async def citizen_events(self, case: Case) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = "0"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            while True:
                async with s.get(
                    f"{self.stack.bridge_url}/api/v1/cases/{case.case_id}/events"
                    f"?after={after}",
                    headers={"Authorization": f"Bearer {case.token}"},
                ) as r:
                    data = await r.json()
                    assert r.status == 200, data
                if not data["events"]:
                    return events
                events += data["events"]
                after = data["next"]

    async def tally(self) -> dict[str, dict[str, Tally]]:
        """Per case: citizen→staff (API accepted vs. Synapse room) and
        staff→citizen (Synapse room vs. the citizen's events)."""
        result: dict[str, dict[str, Tally]] = {}
        for case in self.cases:
            history = await self.room_history(case)
            messages = [
                e
                for e in history
                if e.get("type") == "m.room.message"
                and isinstance((e.get("content") or {}).get("body"), str)
            ]
            ghost = [
                e["content"]["body"]
                for e in messages
                if e["sender"].startswith("@bc_")
                and e["content"]["body"].startswith("C ")
            ]
            staff_in_room = [
                e["content"]["body"]
                for e in messages
                if e["sender"] == ANNA and e["content"]["body"].startswith("S ")
            ]
            timeline = await self.citizen_events(case)
            staff_seen = [
                e["body"]
                for e in timeline
                if e["type"] == "message" and e["sender"] == "staff"
            ]
            result[case.reference] = {
                "citizen_to_staff": Tally(case.sent_by_citizen, ghost),
                "staff_to_citizen": Tally(staff_in_room, staff_seen),
            }
        return result

    async def settle(self, within: float = 120) -> dict[str, dict[str, Tally]]:
        """Wait until nothing is missing any more (or the time is up), then count."""
        deadline = time.monotonic() + within
        while True:
            tallies = await self.tally()
            missing = sum(len(t.lost) for c in tallies.values() for t in c.values())
            if not missing or time.monotonic() > deadline:
                return tallies
            await asyncio.sleep(1)


def totals(tallies: dict[str, dict[str, Tally]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for direction in ("citizen_to_staff", "staff_to_citizen"):
        ts = [c[direction] for c in tallies.values()]
        out[direction] = {
            "sent": sum(len(t.expected) for t in ts),
            "lost": sum(len(t.lost) for t in ts),
            "twice": sum(len(t.twice) for t in ts),
            "out_of_order": sum(t.out_of_order for t in ts),
        }
    return out


# --- faults ---------------------------------------------------------------------


def _pid_of(data_dir: Path, needle: str) -> int | None:
    """A process whose command line names ``needle`` (a file in the data folder)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state != "Z":
            return int(proc.name)
    return None


def synapse_pid(stack: Stack) -> int | None:
    return _pid_of(stack.data_dir, str(stack.data_dir / "synapse" / "homeserver.yaml"))


def clamd_pid(stack: Stack) -> int | None:
    return _pid_of(stack.data_dir, str(stack.data_dir / "clamd" / "clamd.conf"))


def kill(pid: int | None) -> None:
    assert pid is not None, "process not found"
    os.kill(pid, signal.SIGKILL)


async def wait_until(predicate: Any, within: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def kill_synapse(stack: Stack) -> int:
    """kill -9 the embedded Synapse; the bridge must start it again."""
    old = synapse_pid(stack)
    kill(old)
    await wait_until(
        lambda: synapse_pid(stack) not in (None, old), 90, "Synapse restarted"
    )
    return int(old or 0)


def kill_bridge(stack: Stack) -> None:
    """kill -9 ``buergerchat run``; its Synapse and clamd follow it down."""
    assert stack.process is not None
    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait(30)
    stack.process = None


async def restart_stack(stack: Stack) -> None:
    await asyncio.to_thread(stack.start)


async def kill_round(stack: Stack, *, clean_restart: bool, pause: float) -> None:
    """One round of the suite's faults, ``pause`` seconds of traffic between
    them: (a clean stop and start,) kill -9 of the bridge, of Synapse alone
    (the bridge starts it again) and of both at once."""
    if clean_restart:
        await asyncio.sleep(pause)
        await asyncio.to_thread(stack.stop)  # Ctrl-C, as an operator would
        await restart_stack(stack)
    await asyncio.sleep(pause)
    kill_bridge(stack)
    await restart_stack(stack)
    await asyncio.sleep(pause)
    await kill_synapse(stack)
    await asyncio.sleep(pause + 1)
    kill(synapse_pid(stack))  # a crash of both at once
    kill_bridge(stack)
    await restart_stack(stack)
    await asyncio.sleep(pause)
