"""PDF transcripts end to end: !transcript in the room, the citizen download,
the archive on close and the verify command against the real Synapse."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomMessageFile
from pypdf import PdfReader

from bots.transcript import render_pdf, sample, stored_final_hash, verify

from .stack import Stack
from .test_live_chat import api, join_case_room, open_case, wait_for_message

pytestmark = pytest.mark.e2e

CITIZEN_TEXT = "Grüße aus Köln – Привет, мне нужен паспорт. Straße ß"
STAFF_TEXT = "Gerne! Здравствуйте, Frau Müller – wir helfen Ihnen weiter."


async def get_pdf(stack: Stack, case_id: str, token: str) -> tuple[int, bytes, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{stack.bridge_url}/api/v1/cases/{case_id}/transcript", headers=headers
        ) as response:
            return response.status, await response.read(), response.headers


async def wait_for_file(
    client: AsyncClient, room_id: str, name: str
) -> RoomMessageFile:
    for _ in range(60):
        response = await client.sync(timeout=500)
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if isinstance(event, RoomMessageFile) and event.body == name:
                return event
    raise AssertionError(f"{name} never reached {room_id}")


async def chat(stack: Stack, anna: AsyncClient) -> tuple[dict[str, Any], str]:
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    status, sent = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": CITIZEN_TEXT, "client_id": "t-1"},
    )
    assert status == 201
    case["citizen_event_id"] = sent["event_id"]
    await wait_for_message(anna, room_id, CITIZEN_TEXT)
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": STAFF_TEXT}
    )
    await wait_for_message(anna, room_id, STAFF_TEXT)
    return case, room_id


def pdf_text(pdf: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages), reader


def squash(text: str) -> str:
    return " ".join(text.split())


async def test_transcript_command_posts_readable_pdf(
    stack: Stack, anna: AsyncClient
) -> None:
    """!transcript posts Verlauf-<ref>.pdf; it holds the reference, both messages in
    order with umlauts and Cyrillic, and page numbers."""
    case, room_id = await chat(stack, anna)
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!transcript"}
    )
    event = await wait_for_file(anna, room_id, f"Verlauf-{case['reference']}.pdf")
    downloaded = await anna.download(event.url)
    pdf = downloaded.body
    assert pdf.startswith(b"%PDF")
    text, reader = pdf_text(pdf)
    flat = squash(text)
    assert case["reference"] in flat
    assert "Seite 1 von" in flat
    assert "Привет" in flat and "Здравствуйте" in flat and "Grüße" in flat
    assert flat.index("Привет") < flat.index("Здравствуйте")
    assert "!transcript" not in flat
    assert stored_final_hash(pdf) is not None


async def test_citizen_download_only_own_case(stack: Stack, anna: AsyncClient) -> None:
    """The citizen gets their transcript as a PDF attachment; another case's token
    is refused with 403."""
    case, _ = await chat(stack, anna)
    other = await open_case(stack)
    status, pdf, headers = await get_pdf(stack, case["case_id"], case["token"])
    assert status == 200
    assert pdf.startswith(b"%PDF")
    assert headers["Content-Type"] == "application/pdf"
    assert "attachment" in headers["Content-Disposition"]
    assert case["reference"] in squash(pdf_text(pdf)[0])
    status, _, _ = await get_pdf(stack, case["case_id"], other["token"])
    assert status == 403


def test_tampered_entry_fails_verify() -> None:
    """Changing one message body makes the entries no longer match the final hash."""
    entries = sample.conversation()
    case = sample.case(entries)
    rendered = render_pdf(case, entries)
    assert verify(case, entries, rendered.final_hash)
    tampered = list(entries)
    changed = tampered[1].body + " (geändert)"
    tampered[1] = dataclasses.replace(tampered[1], body=changed)
    assert not verify(case, tampered, rendered.final_hash)


def run_verify(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BUERGERCHAT_CONFIG_DIR": str(stack.config_dir),
        "BUERGERCHAT_DATA_DIR": str(stack.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "bridge", "verify-transcript", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


async def test_close_archives_and_verify_matches(
    stack: Stack, anna: AsyncClient
) -> None:
    """!close archives <reference>.pdf; verify-transcript then reports a match."""
    case, room_id = await chat(stack, anna)
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
    )
    archive = stack.data_dir / "transcripts" / f"{case['reference']}.pdf"
    for _ in range(60):
        if archive.is_file():
            break
        await asyncio.sleep(0.5)
    assert archive.is_file()
    await asyncio.sleep(1)  # the hash is stored right after the file is written
    result = await asyncio.to_thread(run_verify, stack, case["reference"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stimmt überein" in result.stdout
    assert stored_final_hash(archive.read_bytes()) in result.stdout

    bogus = archive.with_name("fremd.pdf")
    text = archive.read_bytes()
    found = stored_final_hash(text)
    assert found is not None
    bogus.write_bytes(text.replace(found.encode(), b"0" * 64))
    result = await asyncio.to_thread(
        run_verify, stack, case["reference"], "--pdf", str(bogus)
    )
    assert result.returncode == 1
    assert "VERÄNDERT" in result.stdout


async def redact_as_bot(stack: Stack, room_id: str, event_id: str) -> None:
    """Remove an event behind the archive's back, as an admin with the AS token."""
    from urllib.parse import quote

    from bridge.homeserver import load_secrets

    token = load_secrets(stack.data_dir)["as_token"]
    url = (
        f"{stack.homeserver_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
        f"/redact/{quote(event_id, safe='')}/tamper-{event_id[1:9]}"
    )
    async with aiohttp.ClientSession() as session:
        async with session.put(
            url,
            params={"user_id": f"@buergerchat:{stack.server_name}"},
            headers={"Authorization": f"Bearer {token}"},
            json={"reason": "test"},
        ) as response:
            assert response.status == 200, await response.text()


async def test_verify_reports_removed_message(stack: Stack, anna: AsyncClient) -> None:
    """After closing, a message redacted in Synapse makes verify-transcript exit 1
    with VERÄNDERT."""
    case, room_id = await chat(stack, anna)
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
    )
    archive = stack.data_dir / "transcripts" / f"{case['reference']}.pdf"
    for _ in range(60):
        if archive.is_file():
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    before = await asyncio.to_thread(run_verify, stack, case["reference"])
    assert before.returncode == 0, before.stdout + before.stderr
    await redact_as_bot(stack, room_id, case["citizen_event_id"])
    after = await asyncio.to_thread(run_verify, stack, case["reference"])
    assert after.returncode == 1, after.stdout + after.stderr
    assert "VERÄNDERT" in after.stdout
