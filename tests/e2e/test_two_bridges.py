"""Two bridge processes on one PostgreSQL against one Synapse, with no sticky
sessions: the citizen talks to one, Synapse pushes the staff traffic to the
other, and a long-poll on either sees everything once. The lease holder of
the appservice inbox is then frozen (SIGSTOP, as a hung process): the other
takes the inbox over and nothing is lost or shown twice when it wakes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from nio import AsyncClient

from bots.scanner.pipeline import embedded_socket
from bridge.homeserver import ADMIN_TOKEN_KEY

from ..conftest import PG_DSN, create_pg_database, drop_pg_database, require_pg
from .conftest import ANNA, BERND, staff_client
from .stack import Stack, free_port, make_stack, shared_rules
from .test_live_chat import api, join_case_room, open_case, wait_for_message
from .test_routing import CLARA
from .test_widget import wait_for_text

pytestmark = pytest.mark.e2e


def second_bridge(first: Stack, base: Path, port: int) -> Stack:
    """Another bridge process for the same town: its own port and config, the
    same database, data folder and (external to it) Synapse and clamd."""
    config_dir = base / "config"
    shutil.copytree(first.config_dir, config_dir)
    token_file = base / "admin-token"
    secrets = yaml.safe_load((first.data_dir / "secrets.yaml").read_text())
    token_file.write_text(secrets[ADMIN_TOKEN_KEY])
    second = Stack(config_dir, first.data_dir, port, first.homeserver_port)

    def external(data: dict[str, Any]) -> None:
        data["homeserver"]["embedded"] = False
        data["homeserver"]["admin_token_file"] = str(token_file)
        data["bridge"]["port"] = second.bridge_port
        data["bridge"]["public_url"] = second.bridge_url
        data.setdefault("scanner", {})["clamd"] = (
            f"unix:{embedded_socket(first.data_dir)}"
        )

    second.edit_config("buergerchat.yaml", external)
    return second


def two_in_turn(data: dict[str, Any]) -> None:
    """As the shared stacks, and Bauen with two people taking cases in turn."""
    shared_rules(data)
    bauen = next(d for d in data["departments"] if d["id"] == "bauen")
    bauen["staff"].append({"id": CLARA, "name": "Clara Wagner"})
    bauen["strategy"] = "round_robin"


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[Stack, Stack]]:
    await require_pg()
    synapse_db = await create_pg_database("bc_synapse")
    bridge_db = await create_pg_database("bc_bridge")
    b_port = free_port()
    first = make_stack(
        tmp_path / "a",
        edit_rules=two_in_turn,
        homeserver={"database": f"{PG_DSN}/{synapse_db}"},
        # Synapse pushes to the second process; citizens use the first.
        bridge={
            "database": f"{PG_DSN}/{bridge_db}",
            "appservice_url": f"http://127.0.0.1:{b_port}",
        },
    )
    second: Stack | None = None
    try:
        first.bridge_db = bridge_db  # type: ignore[attr-defined]
        first.start()
        second = second_bridge(first, tmp_path / "b", b_port)
        second.start()
        yield first, second
    finally:
        if second is not None:
            if second.process is not None:
                os.kill(second.process.pid, signal.SIGCONT)
            second.stop()
        if first.process is not None:
            os.kill(first.process.pid, signal.SIGCONT)
        first.stop()
        await drop_pg_database(synapse_db)
        await drop_pg_database(bridge_db)


async def poll(
    stack: Stack, case: dict[str, Any], after: str, wait: int = 20
) -> tuple[list[dict[str, Any]], str]:
    status, body = await api(
        stack,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after={after}&timeout={wait}",
        token=case["token"],
    )
    assert status == 200, body
    return body["events"], body["next"]


async def staff_bodies(
    stack: Stack, case: dict[str, Any], want: set[str], seconds: float = 90
) -> list[str]:
    """Every staff message body the citizen's timeline on ``stack`` shows,
    read until all of ``want`` are there (each read a long-poll)."""
    after, bodies = "0", []
    deadline = asyncio.get_running_loop().time() + seconds
    while not want <= set(bodies):
        assert asyncio.get_running_loop().time() < deadline, (want, bodies)
        events, after = await poll(stack, case, after, 5)
        bodies += [e["body"] for e in events if e["sender"] == "staff"]
    return bodies


async def holder(stack: Stack) -> bool:
    status, body = await api(stack, "GET", "/healthz")
    assert status in (200, 503), body
    return bool(body["appservice_inbox"]["worked_off_here"])


async def test_citizen_on_one_process_staff_traffic_through_the_other(
    two: tuple[Stack, Stack],
) -> None:
    a, b = two
    # The first process started first and holds the inbox; the second stores
    # what Synapse pushes and tells the first.
    assert await holder(a) and not await holder(b)
    anna: AsyncClient = await staff_client(a, ANNA)
    try:
        case = await open_case(a)
        room_id = await join_case_room(anna, case["reference"])
        # Long-polls held in both processes before the answer is written.
        on_a = asyncio.create_task(poll(a, case, "0"))
        _, cursor = await poll(b, case, "0", 0)
        on_b = asyncio.create_task(poll(b, case, cursor))
        await asyncio.sleep(1)
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Antwort 1"}
        )
        for task in (on_a, on_b):
            events, _ = await asyncio.wait_for(task, 60)
            bodies = [e["body"] for e in events if e["sender"] == "staff"]
            # A poll answers when something new is there; the answer may
            # come in a later one if a system line woke it first.
            if "Antwort 1" not in bodies:
                assert all(e["sender"] != "staff" for e in events), events
        for stack in (a, b):
            assert await staff_bodies(stack, case, {"Antwort 1"}) == ["Antwort 1"]

        # The citizen writes through the other process: staff see it once.
        status, sent = await api(
            b,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            token=case["token"],
            json={"body": "Danke, über B.", "client_id": "b-1"},
        )
        assert status == 201, sent
        await wait_for_message(anna, room_id, "Danke, über B.")

        # The holder hangs: after its lease ran out the other works off the
        # inbox; staff answers keep coming, on both processes, once each.
        assert a.process is not None
        os.kill(a.process.pid, signal.SIGSTOP)
        try:
            for n in (2, 3):
                await anna.room_send(
                    room_id,
                    "m.room.message",
                    {"msgtype": "m.text", "body": f"Antwort {n}"},
                )
            want = {"Antwort 1", "Antwort 2", "Antwort 3"}
            assert sorted(await staff_bodies(b, case, want)) == sorted(want)
            assert await holder(b)
        finally:
            os.kill(a.process.pid, signal.SIGCONT)
        # The first wakes, finds the lease gone, and works nothing twice.
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Antwort 4"}
        )
        want = {f"Antwort {n}" for n in (1, 2, 3, 4)}
        for stack in (a, b):
            bodies = await staff_bodies(stack, case, want)
            assert sorted(bodies) == sorted(want), bodies
        assert not await holder(a)
    finally:
        await anna.close()


async def test_routing_in_two_processes_takes_turns_as_one(
    two: tuple[Stack, Stack],
) -> None:
    """Cases opened at once through both processes: one rotation, not one per
    process (the routing lock and the stored pointer are shared)."""
    a, b = two
    opened = await asyncio.gather(
        *(open_case(stack, department="bauen") for stack in (a, b) * 5)
    )
    conn = await asyncpg.connect(f"{PG_DSN}/{a.bridge_db}")  # type: ignore[attr-defined]
    try:
        rows = await conn.fetch(
            "SELECT reference, invited FROM cases WHERE department = 'bauen' "
            "ORDER BY number"
        )
    finally:
        await conn.close()
    assert {r["reference"] for r in rows} == {c["reference"] for c in opened}
    picks = [json.loads(r["invited"])[0] for r in rows]
    assert len(picks) == 10 and set(picks) == {BERND, CLARA}
    assert all(x != y for x, y in zip(picks, picks[1:], strict=False)), picks


@contextlib.contextmanager
def round_robin(first: Stack, second: Stack, folder: Path) -> Iterator[Stack]:
    """nginx in front of both processes, turn by turn, no sticky sessions: the
    stack as a citizen's browser sees it through the load balancer."""
    port = free_port()
    folder.mkdir()
    (folder / "nginx.conf").write_text(
        f"""worker_processes 1;
pid {folder}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  client_body_temp_path {folder}; proxy_temp_path {folder};
  fastcgi_temp_path {folder}; uwsgi_temp_path {folder}; scgi_temp_path {folder};
  log_format upstream '$upstream_addr $request';
  access_log {folder}/access.log upstream;
  upstream bridges {{
    server 127.0.0.1:{first.bridge_port}; server 127.0.0.1:{second.bridge_port};
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://bridges; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_buffering off; proxy_read_timeout 120s;
    }}
  }}
}}
""",
        encoding="utf-8",
    )
    nginx = subprocess.Popen(
        [
            shutil.which("nginx") or "/usr/sbin/nginx",
            "-e",
            str(folder / "error.log"),
            "-p",
            str(folder),
            "-c",
            str(folder / "nginx.conf"),
            "-g",
            "daemon off;" + (" user root;" if os.geteuid() == 0 else ""),
        ]
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield dataclasses.replace(first, bridge_port=port, process=None)
    finally:
        nginx.terminate()
        nginx.wait(10)


def served_by(folder: Path) -> Counter[str]:
    """Per bridge process (its address), the citizen API requests it answered."""
    lines = (folder / "access.log").read_text(encoding="utf-8").splitlines()
    return Counter(line.split()[0] for line in lines if "/api/v1/cases" in line)


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
async def test_behind_a_load_balancer_without_sticky_sessions(
    two: tuple[Stack, Stack], tmp_path: Path
) -> None:
    a, b = two
    with round_robin(a, b, tmp_path / "lb") as lb:
        anna: AsyncClient = await staff_client(a, ANNA)
        try:
            case = await open_case(lb)
            room_id = await join_case_room(anna, case["reference"])
            said = [f"Bürger {n}" for n in range(8)]
            for body in said:  # turn by turn through both processes
                status, sent = await api(
                    lb,
                    "POST",
                    f"/api/v1/cases/{case['case_id']}/messages",
                    token=case["token"],
                    json={"body": body, "client_id": body},
                )
                assert status == 201, sent
            texts = await wait_for_text(anna, room_id, said[-1])
            assert [t for t in reversed(texts) if t in said] == said, texts
            answers = [f"Amt {n}" for n in range(8)]
            for body in answers:
                await anna.room_send(
                    room_id, "m.room.message", {"msgtype": "m.text", "body": body}
                )
            # Read through the balancer: every long-poll may land elsewhere.
            bodies = await staff_bodies(lb, case, set(answers))
            assert bodies == answers, bodies
        finally:
            await anna.close()
        per_process = served_by(tmp_path / "lb")
        assert set(per_process) == {
            f"127.0.0.1:{a.bridge_port}",
            f"127.0.0.1:{b.bridge_port}",
        }, per_process
        assert min(per_process.values()) >= 5, per_process
