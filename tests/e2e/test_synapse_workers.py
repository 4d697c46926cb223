"""The live chat through Synapse split into workers (homeserver.workers): main,
event persister, a client/sync worker that also pushes to the bridge, a media
repository and nginx routing between them, with Redis and PostgreSQL. The
logs show which process served what; a killed worker is started again and
nothing sent meanwhile is lost."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nio import AsyncClient, RoomMessageFile, SyncResponse

from ..conftest import (
    PG_DSN,
    create_pg_database,
    drop_pg_database,
    require,
    require_pg,
)
from .conftest import ANNA, staff_client
from .stack import Stack, make_stack
from .test_attachments import upload
from .test_live_chat import (
    api,
    join_case_room,
    open_case,
    wait_for_event,
    wait_for_message,
    wait_for_room_event,
)
from .test_privacy import pdf_with

pytestmark = pytest.mark.e2e


def free_block(size: int = 8) -> int:
    """The first of ``size`` ports in a row that are free now, below the
    range the kernel picks outgoing connections' ports from (one of those
    could take a port of the block before its worker listens)."""
    for _ in range(50):
        first = random.randrange(20000, 32000)
        try:
            for port in range(first, first + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no block of free ports")


async def redis_answers() -> bool:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", 6379), 3
        )
    except (OSError, TimeoutError):
        return False
    writer.write(b"PING\r\n")
    answer = await reader.readline()
    writer.close()
    return answer.startswith(b"+PONG")


@pytest.fixture
async def workers_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    await require_pg()
    require("Redis at 127.0.0.1:6379", await redis_answers())
    synapse_db = await create_pg_database("bc_synapse")
    bridge_db = await create_pg_database("bc_bridge")
    stack = make_stack(
        tmp_path,
        homeserver={
            "database": f"{PG_DSN}/{synapse_db}",
            "workers": {"enabled": True, "first_port": free_block()},
        },
        bridge={"database": f"{PG_DSN}/{bridge_db}"},
    )
    try:
        stack.start(timeout=300)
        yield stack
    finally:
        stack.stop()
        await drop_pg_database(synapse_db)
        await drop_pg_database(bridge_db)


async def syncs_again(client: AsyncClient) -> None:
    for _ in range(120):
        if isinstance(await client.sync(timeout=0), SyncResponse):
            return
        await asyncio.sleep(0.5)
    raise AssertionError("no sync answered within a minute")


def pid_of(worker_config: Path) -> int:
    """The process started with this worker config."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(worker_config).encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no process runs {worker_config}")


def served(stack: Stack, process: str, pattern: str) -> int:
    """How many requests matching ``pattern`` the process's log names."""
    name = "homeserver" if process == "main" else process
    path = stack.data_dir / "synapse" / f"{name}.log"
    text = path.read_text(encoding="utf-8", errors="replace")
    return len(re.findall(pattern, text))


async def citizen_says(stack: Stack, case: dict[str, str], body: str) -> None:
    status, sent = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": body, "client_id": body},
    )
    assert status in (201, 202), sent


async def test_live_chat_through_synapse_workers(workers_stack: Stack) -> None:
    stack = workers_stack
    anna: AsyncClient = await staff_client(stack, ANNA)
    try:
        case = await open_case(stack)
        room_id = await join_case_room(anna, case["reference"])
        await citizen_says(stack, case, "Guten Tag über die Worker.")
        await wait_for_message(anna, room_id, "Guten Tag über die Worker.")
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Gern, Worker!"}
        )
        answer, _ = await wait_for_event(stack, case, lambda e: e["sender"] == "staff")
        assert answer["body"] == "Gern, Worker!"

        # A file: scanned, uploaded to and fetched from the media worker.
        status, body = await upload(stack, case, "antrag.pdf", pdf_with("W0RKER"))
        assert status in (201, 202), body
        event = await wait_for_room_event(
            anna, room_id, lambda e: isinstance(e, RoomMessageFile), what="the file"
        )
        download = await anna.download(event.url)
        assert getattr(download, "body", b"").startswith(b"%PDF")

        # Each process served its part: sync and sends on client1 (which
        # also pushed to the bridge), media on media1, writes on the persister.
        assert served(stack, "client1", r"GET /_matrix/client/v3/sync") > 0
        assert served(stack, "client1", r"PUT /_matrix/client/v3/rooms/.*/send") > 0
        assert served(stack, "main", r"GET /_matrix/client/v3/sync") == 0
        assert served(stack, "media1", r"POST /_matrix/media/v3/upload") > 0
        assert served(stack, "media1", r"GET /_matrix/client/v1/media/download") > 0
        assert served(stack, "persister1", r"/_synapse/replication/send_event") > 0
        assert served(stack, "client1", r"/transactions/") > 0  # pushed to bridge

        # client1 dies (it routes sends and pushes events to the bridge): it
        # is started again, and what the citizen wrote meanwhile arrives once.
        os.kill(pid_of(stack.data_dir / "synapse" / "client1.yaml"), signal.SIGKILL)
        await citizen_says(stack, case, "Während client1 tot war.")
        await syncs_again(anna)  # as Element does, staff's client retries
        await wait_for_message(anna, room_id, "Während client1 tot war.")
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Wieder da."}
        )
        again, seen = await wait_for_event(
            stack, case, lambda e: e.get("body") == "Wieder da."
        )
        assert again["sender"] == "staff"
        assert [e["body"] for e in seen].count("Wieder da.") == 1
        assert "Synapse-client1 restarted" in stack.log()
    finally:
        await anna.close()
