"""Data protection end to end, with a real Synapse, clamd and Maildir: a case
carrying one unique marker (in the citizen's name, e-mail address, messages,
file, the staff reply, the mails and the archived transcript) is exported and
then erased with ``buergerchat erase``; another expires (``buergerchat
retention --as-of`` pins the clock past its period). Afterwards every file in
the data folder — Synapse's database, WAL and media store, the bridge's
database, mails, transcripts, held files, state files, logs — is searched for
the marker (raw, UTF-16 and inside compressed PDF/zip streams): zero hits. The
citizen API answers 404 and Synapse no longer knows the room."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import re
import secrets
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from nio import AsyncClient
from pypdf import PdfReader

from bridge.homeserver import ADMIN_TOKEN_KEY, read_secret

from .conftest import ANNA, staff_client
from .stack import REPO, Stack, make_stack
from .test_attachments import upload
from .test_live_chat import api, join_case_room, open_case, wait_for_event

pytestmark = pytest.mark.e2e

#: Files at least this big are only searched raw (clamd's signatures).
BIG = 32 << 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("privacy"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


# --- searching every file --------------------------------------------------------


def _views(data: bytes) -> Iterator[bytes]:
    """The bytes as stored, as UTF-16 text, and what compressed streams hold
    (PDF FlateDecode streams, zip members, gzip)."""
    yield data
    if len(data) >= BIG:
        return
    yield data[::2] + data[1::2]  # UTF-16 (LE or BE) read as 8-bit
    for match in re.finditer(rb"stream\r?\n", data):
        try:
            yield zlib.decompressobj().decompress(data[match.end() :], 1 << 24)
        except zlib.error:
            continue
    if data[:5] == b"%PDF-":
        yield _pdf_text(data)
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    yield name.encode()
                    yield from _views(z.read(name))
        except zipfile.BadZipFile:
            pass
    if data[:2] == b"\x1f\x8b":
        try:
            yield gzip.decompress(data)
        except OSError:
            pass


def _pdf_text(data: bytes) -> bytes:
    """A PDF's text as a reader sees it (its fonts map glyphs, not letters)."""
    try:
        reader = PdfReader(io.BytesIO(data))
        text = "".join(page.extract_text() or "" for page in reader.pages)
        text += json.dumps(reader.metadata or {}, default=str)
    except Exception:  # not a PDF after all: the raw views cover it
        return b""
    return text.encode()


def files_with(root: Path, marker: str) -> list[str]:
    """Every file under ``root`` that holds ``marker`` (any case), by path."""
    needle = marker.lower().encode()
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if needle in path.name.lower().encode() or any(
            needle in view.lower() for view in _views(data)
        ):
            found.append(str(path.relative_to(root)))
    return found


def new_marker() -> str:
    return "zqx" + secrets.token_hex(6)


# --- driving the product ------------------------------------------------------------


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BUERGERCHAT_CONFIG_DIR": str(stack.config_dir),
        "BUERGERCHAT_DATA_DIR": str(stack.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


async def synapse_admin(stack: Stack, method: str, path: str) -> tuple[int, Any]:
    token = read_secret(stack.data_dir, ADMIN_TOKEN_KEY)
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method,
            stack.homeserver_url + path,
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            return response.status, await response.json()


def pdf_with(text: str) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"% " + text.encode() + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


async def say(stack: Stack, case: dict[str, Any], body: str) -> None:
    status, answer = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": body, "client_id": secrets.token_hex(8)},
    )
    assert status == 201, answer


async def staff_reply_and_close(
    stack: Stack, anna: AsyncClient, case: dict[str, Any], reply: str
) -> str:
    room_id = await join_case_room(anna, case["reference"])
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": reply}
    )
    await wait_for_event(stack, case, lambda e: e.get("body") == reply)
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
    )
    return room_id


async def assert_gone(stack: Stack, case: dict[str, Any]) -> None:
    """The citizen API knows the case no more: 404 with the case's own token."""
    status, body = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}/events", token=case["token"]
    )
    assert status == 404, body


async def settled(stack: Stack) -> None:
    """What Synapse sends after a room's deletion (members leaving) has reached
    the bridge and been worked off, so the search sees the files at rest."""
    await asyncio.sleep(2)
    async with aiohttp.ClientSession() as session:
        for _ in range(60):
            async with session.get(f"{stack.bridge_url}/healthz") as response:
                inbox = (await response.json())["appservice_inbox"]
            if inbox["waiting"] == 0:
                return
            await asyncio.sleep(0.5)
    raise AssertionError("the appservice inbox did not settle")


async def wait_for(check: Any, what: str, seconds: float = 60) -> None:
    for _ in range(int(seconds * 4)):
        if check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} did not happen in {seconds:.0f} s")


async def a_full_case(
    stack: Stack, anna: AsyncClient, marker: str
) -> tuple[dict[str, Any], str]:
    """An offline message with name, address and text carrying the marker, a
    file, a staff reply (which mails the citizen), closed and archived."""
    status, case = await api(
        stack,
        "POST",
        "/api/v1/offline-messages",
        json={
            "client_id": secrets.token_hex(8),
            "topic": "personalausweis",
            "description": f"Mein Ausweis {marker} ist abgelaufen.",
            "name": f"Erika {marker}",
            "email": f"{marker}@example.org",
            "phone": "0621 123-456",
            "consent": True,
            "language": "de",
        },
    )
    assert status == 201, case
    status, answer = await upload(stack, case, f"antrag-{marker}.pdf", pdf_with(marker))
    assert status in (201, 202), answer
    await wait_for_event(
        stack,
        case,
        lambda e: e.get("type") == "attachment" and e.get("state") == "delivered",
    )
    await say(stack, case, f"Noch eine Frage zu {marker}")
    room_id = await staff_reply_and_close(
        stack, anna, case, f"Gerne, Frau {marker}, kommen Sie vorbei."
    )
    transcript = stack.data_dir / "transcripts" / f"{case['reference']}.pdf"
    await wait_for(transcript.exists, "the transcript archive")
    mail = stack.data_dir / "mail"
    await wait_for(lambda: bool(files_with(mail, marker)), "a mail to the citizen")
    return case, room_id


# --- the tests ---------------------------------------------------------------


async def test_erasure_leaves_no_trace(stack: Stack, tmp_path: Path) -> None:
    marker = new_marker()
    anna = await staff_client(stack, ANNA)
    try:
        case, room_id = await a_full_case(stack, anna, marker)
    finally:
        await anna.close()
    before = files_with(stack.data_dir, marker)
    # The search can fail: the marker is in each kind of store before.
    for where in (
        "synapse/homeserver.db",
        "synapse/media_store",
        "bridge.db",
        "mail/",
        "transcripts/",
    ):
        assert any(f.startswith(where) for f in before), (where, before)

    # Art. 15: everything about the person, by their address.
    out = tmp_path / "auskunft.zip"
    address = f"{marker.upper()}@example.org"
    refused = cli(stack, "export", "--email", address, "--out", str(out))
    assert refused.returncode == 2 and not out.exists()
    done = cli(stack, "export", "--email", address, "--out", str(out), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        folder = case["reference"]
        data = json.loads(z.read(f"{folder}/data.json"))
        assert data["case"]["name"] == f"Erika {marker}"
        assert data["offline_message"]["email"] == f"{marker}@example.org"
        texts = [m["text"] for m in data["messages"]]
        assert any(marker in t for t in texts if "Gerne" in t)
        assert any(m["to"] == [f"{marker}@example.org"] for m in data["mails"])
        assert f"{folder}/transcript.pdf" in names
        [file_entry] = data["files"]
        assert marker.encode() in z.read(f"{folder}/{file_entry['file']}")
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    # Art. 17: erased, by reference, confirmed on the command line.
    refused = cli(stack, "erase", case["reference"])  # no --yes, no answer
    assert refused.returncode == 2 and "Nothing erased" in refused.stdout
    done = cli(stack, "erase", case["reference"], "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "erased" in done.stdout and case["reference"] in done.stdout

    await assert_gone(stack, case)
    await settled(stack)
    status, body = await synapse_admin(
        stack, "GET", f"/_synapse/admin/v1/rooms/{quote(room_id)}"
    )
    assert status == 404, body
    hits = files_with(stack.data_dir, marker)
    assert hits == [], f"{marker} still in {hits}"
    assert marker not in stack.log(), "the bridge's log names the erased case"

    log = cli(stack, "privacy-log")
    lines = [x.split() for x in log.stdout.splitlines() if case["reference"] in x]
    assert [x[2] for x in lines] == ["exported", "erased"], log.stdout
    assert all(x[4] == "cli" for x in lines) and marker not in log.stdout


async def test_expiry_leaves_no_trace(stack: Stack) -> None:
    """A closed chat whose period (90 days) ended is erased the same way;
    ``--as-of`` pins the clock past it."""
    marker = new_marker()
    case = await open_case(stack, name=f"Max {marker}")
    await say(stack, case, f"Hallo, hier {marker}")
    anna = await staff_client(stack, ANNA)
    try:
        await staff_reply_and_close(stack, anna, case, f"Hallo Herr {marker}!")
    finally:
        await anna.close()
    transcript = stack.data_dir / "transcripts" / f"{case['reference']}.pdf"
    await wait_for(transcript.exists, "the transcript archive")
    assert files_with(stack.data_dir, marker)

    listed = cli(stack, "retention")
    assert listed.returncode == 0 and case["reference"] not in listed.stdout
    later = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    listed = cli(stack, "retention", "--as-of", later)
    assert case["reference"] in listed.stdout and "chats_days" in listed.stdout
    done = cli(stack, "retention", "--as-of", later, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr

    await assert_gone(stack, case)
    await settled(stack)
    hits = files_with(stack.data_dir, marker)
    assert hits == [], f"{marker} still in {hits}"
    log = cli(stack, "privacy-log")
    lines = [x.split() for x in log.stdout.splitlines() if case["reference"] in x]
    assert [x[2] for x in lines] == ["expired"], log.stdout


async def test_the_widget_links_the_privacy_notice(stack: Stack) -> None:
    """Art. 13: the status names the notice the widget links at consent; the
    page answers with the periods from the settings, under a strict CSP."""
    status, body = await api(stack, "GET", "/api/v1/status")
    assert status == 200 and body["privacy_url"] == f"{stack.bridge_url}/privacy"
    async with aiohttp.ClientSession() as session:
        async with session.get(body["privacy_url"]) as response:
            assert response.status == 200
            page = await response.text()
            policy = response.headers["Content-Security-Policy"]
    assert "Art. 13" in page and "Chats 90 Tage" in page
    assert "script-src" in policy and "unsafe-inline" not in policy
