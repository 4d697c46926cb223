"""The production path: Synapse and the bridge both on PostgreSQL; stopping with
Ctrl-C ends every child process, and a second run reuses the data folder."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ..conftest import PG_DSN, create_pg_database, drop_pg_database, require_pg
from .conftest import ANNA, staff_client
from .stack import Stack, make_stack
from .test_attachments import upload
from .test_live_chat import (
    api,
    join_case_room,
    open_case,
    wait_for_event,
    wait_for_message,
)
from .test_privacy import (
    assert_gone,
    cli,
    files_with,
    new_marker,
    pdf_with,
    say,
    settled,
    staff_reply_and_close,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
async def pg_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    await require_pg()
    synapse_db = await create_pg_database("bc_synapse")
    bridge_db = await create_pg_database("bc_bridge")
    stack = make_stack(
        tmp_path,
        homeserver={"database": f"{PG_DSN}/{synapse_db}"},
        bridge={"database": f"{PG_DSN}/{bridge_db}"},
    )
    stack.pg_databases = (synapse_db, bridge_db)  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        stack.stop()
        await drop_pg_database(synapse_db)
        await drop_pg_database(bridge_db)


def _synapse_pids(stack: Stack) -> list[int]:
    """Processes whose command line names this stack's homeserver.yaml."""
    marker = str(stack.data_dir / "synapse" / "homeserver.yaml").encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


async def test_chat_on_postgres_survives_restart(pg_stack: Stack) -> None:
    """On PostgreSQL a chat works both ways; Ctrl-C stops Synapse too; after a second
    start on the same data the citizen's token and timeline are still there."""
    pg_stack.start()
    case = await open_case(pg_stack)
    anna = await staff_client(pg_stack, ANNA)
    try:
        room_id = await join_case_room(anna, case["reference"])
        status, _ = await api(
            pg_stack,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            token=case["token"],
            json={"body": "Vor dem Neustart", "client_id": "a"},
        )
        assert status == 201
        await wait_for_message(anna, room_id, "Vor dem Neustart")
    finally:
        await anna.close()

    assert _synapse_pids(pg_stack), "Synapse is not running as a child"
    assert pg_stack.stop() == 0
    assert _synapse_pids(pg_stack) == [], "Synapse outlived Ctrl-C"

    pg_stack.start()
    anna = await staff_client(pg_stack, ANNA)
    try:
        await anna.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": "Nach dem Neustart"},
        )
        event, seen = await wait_for_event(
            pg_stack, case, lambda e: e["body"] == "Nach dem Neustart"
        )
        assert event["sender"] == "staff"
        assert [e["body"] for e in seen].count("Vor dem Neustart") == 1
    finally:
        await anna.close()


def _children_of(stack: Stack) -> list[int]:
    """Synapse and clamd processes started for this stack's data folder."""
    marker = str(stack.data_dir).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and marker in cmdline and b"bridge" not in cmdline:
            pids.append(int(proc.name))
    return pids


async def test_children_die_with_a_killed_bridge(tmp_path: Path) -> None:
    """Even a bridge killed with SIGKILL (no chance to clean up) leaves no Synapse
    or clamd running: they get SIGTERM from the kernel when their parent dies."""
    stack = make_stack(tmp_path)
    stack.start()
    try:
        assert len(_children_of(stack)) >= 2, "Synapse and clamd should be running"
        assert stack.process is not None
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait(30)
        stack.process = None
        for _ in range(150):
            if not _children_of(stack):
                break
            await asyncio.sleep(0.2)
        assert _children_of(stack) == [], "a child outlived the killed bridge"
    finally:
        for pid in _children_of(stack):
            os.kill(pid, signal.SIGKILL)
        stack.stop()


# --- erasure on PostgreSQL ---------------------------------------------------------

#: Column types that can hold text (bytea: the mail outbox keeps whole mails).
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "tsvector")


async def pg_rows_with(database: str, marker: str) -> list[str]:
    """Every table.column of ``database`` in which some row holds ``marker``."""
    import asyncpg

    conn = await asyncpg.connect(f"{PG_DSN}/{database}")
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND (data_type = ANY($1::text[]) "
            "OR data_type = 'bytea')",
            list(TEXT_TYPES),
        )
        found = []
        for row in columns:
            table, column = row["table_name"], row["column_name"]
            value = (
                f"encode(\"{column}\", 'escape')"
                if row["data_type"] == "bytea"
                else f'"{column}"::text'
            )
            try:
                hit = await conn.fetchval(
                    f'SELECT count(*) FROM "{table}" '
                    f"WHERE position($1 in lower({value})) > 0",
                    marker.lower(),
                )
            except asyncpg.exceptions.UndefinedTableError:
                # Dropped since it was listed: a temporary table of Synapse's
                # background updates (_temp_populate_user_directory_…). Gone
                # tables hold no rows.
                continue
            if hit:
                found.append(f"{database}.{table}.{column}")
        return found
    finally:
        await conn.close()


async def test_erasure_on_postgres_leaves_no_row(pg_stack: Stack) -> None:
    """The same proof on the production path: after ``buergerchat erase`` no
    text column of Synapse's or the bridge's database holds the marker (nor any
    file of the data folder)."""
    pg_stack.start()
    marker = new_marker()
    case = await open_case(pg_stack, name=f"Max {marker}")
    await say(pg_stack, case, f"Hallo, hier {marker}")
    status, answer = await upload(pg_stack, case, f"{marker}.pdf", pdf_with(marker))
    assert status in (201, 202), answer
    await wait_for_event(
        pg_stack,
        case,
        lambda e: e.get("type") == "attachment" and e.get("state") == "delivered",
    )
    anna = await staff_client(pg_stack, ANNA)
    try:
        await staff_reply_and_close(pg_stack, anna, case, f"Hallo Herr {marker}!")
    finally:
        await anna.close()
    transcript = pg_stack.data_dir / "transcripts" / f"{case['reference']}.pdf"
    await wait_for(transcript.exists, "the transcript archive")
    synapse_db, bridge_db = pg_stack.pg_databases  # type: ignore[attr-defined]
    assert await pg_rows_with(synapse_db, marker), "the search finds nothing at all"
    assert await pg_rows_with(bridge_db, marker)

    done = cli(pg_stack, "erase", case["reference"], "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    await settled(pg_stack)

    assert await pg_rows_with(synapse_db, marker) == []
    assert await pg_rows_with(bridge_db, marker) == []
    assert files_with(pg_stack.data_dir, marker) == []
    await assert_gone(pg_stack, case)
