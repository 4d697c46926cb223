"""PDF transcripts end to end: a whole conversation (multilingual, files, claim,
video, transfer, close) archived to the configured folder and read back, the
citizen's download, !transcript in the room, and verify-transcript against the
real Synapse before and after tampering."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from nio import AsyncClient, RoomMessageFile, UploadResponse
from pypdf import PdfReader

from bots.transcript import german, render_pdf, sample, stored_final_hash, verify
from bridge.homeserver import load_secrets

from .conftest import BERND, staff_client
from .samples import png
from .stack import Stack, make_stack
from .test_attachments import PDF, upload
from .test_live_chat import (
    api,
    join_case_room,
    open_case,
    wait_for_event,
    wait_for_room_event,
)
from .test_live_chat import wait_for_message as wait_for_text
from .test_video import bot_notice

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")
CITIZEN_TEXT = "Grüße aus Köln – Привет, мне нужен паспорт. Straße ß"
TURKISH = "Türkçe: ığüşöç İĞÜŞÖÇ – randevu alabilir miyim?"
ARABIC = "مرحبا أريد تسجيل عنوان سكني الجديد"
STAFF_TEXT = "Gerne! Здравствуйте, Frau Muster – wir helfen Ihnen weiter."
BERND_TEXT = "Guten Tag, ich übernehme Ihren Bauantrag. Teşekkürler!"
NOTE = "Bauantrag gehört zum Bauamt"


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("akten") / "transkripte"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, archive_dir: Path
) -> Iterator[Stack]:
    """One product stack for this module that files transcripts into a folder of
    its own outside the data folder (``transcripts.archive_dir``)."""
    s = make_stack(
        tmp_path_factory.mktemp("stack"),
        transcripts={"archive_dir": str(archive_dir)},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def get_pdf(
    stack: Stack, case_id: str, token: str | None
) -> tuple[int, bytes, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{stack.bridge_url}/api/v1/cases/{case_id}/transcript", headers=headers
        ) as response:
            return response.status, await response.read(), response.headers


async def wait_for_file(
    client: AsyncClient, room_id: str, name: str
) -> RoomMessageFile:
    return await wait_for_room_event(
        client,
        room_id,
        lambda e: isinstance(e, RoomMessageFile) and e.body == name,
        what=name,
        rounds=60,
    )


async def say(client: AsyncClient, room_id: str, body: str) -> None:
    await client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": body}
    )


async def citizen_says(stack: Stack, case: dict[str, Any], body: str) -> str:
    status, sent = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": body, "client_id": hashlib.sha1(body.encode()).hexdigest()},
    )
    assert status == 201, sent
    return str(sent["event_id"])


async def chat(stack: Stack, anna: AsyncClient) -> tuple[dict[str, Any], str]:
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    case["citizen_event_id"] = await citizen_says(stack, case, CITIZEN_TEXT)
    await wait_for_text(anna, room_id, CITIZEN_TEXT)
    await say(anna, room_id, STAFF_TEXT)
    await wait_for_text(anna, room_id, STAFF_TEXT)
    return case, room_id


def pdf_text(pdf: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages), reader


def squash(text: str) -> str:
    return " ".join(text.split())


def berlin_minutes(start: float, end: float) -> set[str]:
    """Every HH:MM (Berlin) a moment between start and end can be shown as."""
    instants = [*range(int(start), int(end) + 1, 20), end]
    return {
        datetime.fromtimestamp(t, UTC).astimezone(BERLIN).strftime("%H:%M")
        for t in instants
    }


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
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )


async def redact_as_bot(stack: Stack, room_id: str, event_id: str) -> None:
    """Remove an event behind the archive's back, as the bot with the AS token."""
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


async def staff_upload(
    client: AsyncClient, room_id: str, name: str, data: bytes, mime: str
) -> None:
    """A file sent the way Element sends it: uploaded, then an m.file event."""
    uploaded, _ = await client.upload(
        io.BytesIO(data), content_type=mime, filename=name, filesize=len(data)
    )
    assert isinstance(uploaded, UploadResponse), uploaded
    await client.room_send(
        room_id,
        "m.room.message",
        {
            "msgtype": "m.file",
            "body": name,
            "url": uploaded.content_uri,
            "info": {"mimetype": mime, "size": len(data)},
        },
    )


async def test_closed_case_is_archived_as_the_conversation_a_clerk_files(
    stack: Stack, anna: AsyncClient, archive_dir: Path
) -> None:
    """A whole case — multilingual text, a photo, a PDF from the citizen and one
    from staff, !claim, !help, !video and !video end, !transfer to Bauen with a
    note, !close — lands as <reference>.pdf in transcripts.archive_dir. It
    reads as the conversation: files with name, size, SHA-256 and verdict, the
    photo as thumbnail, system entries with who and when, no commands or bot
    answers; the citizen downloads the same document after the end, and
    verify-transcript says it matches until an event is redacted in Synapse."""
    case, room_id = await chat(stack, anna)
    await citizen_says(stack, case, TURKISH)
    await citizen_says(stack, case, ARABIC)
    await say(anna, room_id, "!claim")
    await bot_notice(anna, room_id, "hat den Fall übernommen")
    await say(anna, room_id, "!help")
    await bot_notice(anna, room_id, "Befehle in diesem Raum")

    photo, form = png(64, 48, b"\xe0\x10\x10"), PDF
    for name, data in (("Schlagloch.png", photo), ("Antrag.pdf", form)):
        status, body = await upload(stack, case, name, data)
        assert (status, body.get("state")) == (201, "delivered"), body
    staff_form = PDF.replace(b"%%EOF", b"% Formular Bauamt\n%%EOF")
    await staff_upload(anna, room_id, "Formular.pdf", staff_form, "application/pdf")
    await wait_for_event(
        stack,
        case,
        lambda e: (
            e["type"] == "attachment"
            and e["sender"] == "staff"
            and e.get("state") == "delivered"
        ),
    )

    video_from = time.time()
    await say(anna, room_id, "!video")
    moderator = await bot_notice(anna, room_id, "Videoberatung läuft")
    await say(anna, room_id, "!video end")
    await bot_notice(anna, room_id, "ist beendet")
    video_to = time.time()
    await say(anna, room_id, f"!transfer bauen {NOTE}")
    await bot_notice(anna, room_id, "weitergegeben")

    bernd = await staff_client(stack, BERND)
    try:
        bernd_room = await join_case_room(bernd, case["reference"])
        assert bernd_room == room_id
        await say(bernd, room_id, BERND_TEXT)
        await wait_for_text(bernd, room_id, BERND_TEXT)
        await say(bernd, room_id, "!close Antrag vollständig")
        await wait_for_event(stack, case, lambda e: e.get("kind") == "closed")
    finally:
        await bernd.close()

    # The archive is a job written with the close: it follows within moments.
    archive = archive_dir / f"{case['reference']}.pdf"
    for _ in range(300):
        if archive.is_file():
            break
        await asyncio.sleep(0.1)
    assert archive.is_file(), sorted(p.name for p in archive_dir.parent.rglob("*"))
    assert not (stack.data_dir / "transcripts" / archive.name).exists()
    pdf = archive.read_bytes()
    text, reader = pdf_text(pdf)
    flat = squash(text)

    # Header: the department the case ended with, the people, the times.
    first = squash(reader.pages[0].extract_text())
    assert case["reference"] in first
    assert "Fachbereich Bauen und Wohnen" in first
    assert "Anna Schmidt, Bernd Keller" in first
    assert f"Seite 1 von {len(reader.pages)}" in first
    assert case["reference"] in str(reader.metadata.title)

    # The conversation, in order and in every script.
    for line in (CITIZEN_TEXT, TURKISH, STAFF_TEXT, BERND_TEXT):
        assert squash(line) in flat, line
    arabic = [
        ln.strip()
        for ln in text.splitlines()
        if any("\ufe70" <= ch <= "\ufeff" for ch in ln)
    ]
    assert [unicodedata.normalize("NFKC", ln) for ln in arabic] == [ARABIC]

    # No commands, no answers of the bot, no moderator link.
    for noise in ("!help", "!claim", "!video", "!transfer", "!close", "Befehle"):
        assert noise not in flat, noise
    assert moderator.splitlines()[0] not in flat
    assert "jwt" not in flat.lower() and "Moderator" not in flat

    # System entries with who (and when, for the video).
    claimed = "Anna Schmidt hat den Fall übernommen."
    started = "Anna Schmidt hat eine Videoberatung gestartet."
    ended = "Die Videoberatung wurde von Anna Schmidt beendet."
    transferred = (
        f"Anna Schmidt hat den Fall an Bauen und Wohnen weitergegeben. Notiz: {NOTE}"
    )
    joined = "Bernd Keller ist beigetreten."
    closed = "Bernd Keller hat den Fall abgeschlossen. Notiz: Antrag vollständig"
    order = [
        CITIZEN_TEXT,
        claimed,
        "Schlagloch.png",
        "Antrag.pdf",
        "Formular.pdf",
        started,
        ended,
        transferred,
        joined,
        squash(BERND_TEXT),
        closed,
    ]
    positions = [flat.find(item) for item in order]
    assert -1 not in positions, dict(zip(order, positions, strict=True))
    assert positions == sorted(positions), dict(zip(order, positions, strict=True))
    assert flat.rstrip().count(closed) == 1
    minutes = berlin_minutes(video_from, video_to)
    for event in (started, ended):
        found = re.search(r"Nr\. \d+ (\d\d:\d\d) ▸ " + re.escape(event), flat)
        assert found and found.group(1) in minutes, (event, minutes)

    # Files: name, size, SHA-256, verdict; the photo as a red thumbnail.
    for name, data, mime in (
        ("Schlagloch.png", photo, "image/png"),
        ("Antrag.pdf", form, "application/pdf"),
        ("Formular.pdf", staff_form, "application/pdf"),
    ):
        kind = "Bild" if mime.startswith("image/") else "Datei"
        listed = (
            f"{kind}: {name} {german.size_de(len(data))} · {mime} · "
            f"Virenprüfung: unauffällig SHA-256: {hashlib.sha256(data).hexdigest()}"
        )
        assert listed in flat, listed
    images = [img.image for page in reader.pages for img in page.images]
    assert len(images) == 1
    red, green, blue = images[0].convert("RGB").getpixel((5, 5))
    assert red > 180 and green < 80 and blue < 80

    assert "Archiv der Verwaltung (mit internen Notizen)" in flat

    # The citizen's download is the citizen's copy: the same conversation,
    # none of the staff's notes, a chain of its own, also verifiable.
    status, downloaded, headers = await get_pdf(stack, case["case_id"], case["token"])
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    mine = squash(pdf_text(downloaded)[0])
    assert "Anna Schmidt hat den Fall an Bauen und Wohnen weitergegeben." in mine
    assert "Bernd Keller hat den Fall abgeschlossen." in mine
    assert NOTE not in mine and "Antrag vollständig" not in mine
    assert "Notiz:" not in mine
    assert squash(BERND_TEXT) in mine and CITIZEN_TEXT in mine
    assert headers["X-Transcript-Hash"] == stored_final_hash(downloaded)
    assert stored_final_hash(downloaded) != stored_final_hash(pdf)
    citizen_copy = archive.with_name("buerger.pdf")
    citizen_copy.write_bytes(downloaded)
    result = await asyncio.to_thread(
        run_verify, stack, case["reference"], "--pdf", str(citizen_copy)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ausfertigung für Bürger*in" in result.stdout

    # verify-transcript: the configured archive folder, then tampering.
    result = await asyncio.to_thread(run_verify, stack, case["reference"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stimmt überein" in result.stdout
    assert str(archive) in result.stdout
    assert str(stored_final_hash(pdf)) in result.stdout

    forged = archive.with_name("fremd.pdf")
    found = stored_final_hash(pdf)
    assert found is not None
    forged.write_bytes(pdf.replace(found.encode(), b"0" * 64))
    result = await asyncio.to_thread(
        run_verify, stack, case["reference"], "--pdf", str(forged)
    )
    assert result.returncode == 1 and "VERÄNDERT" in result.stdout

    await redact_as_bot(stack, room_id, case["citizen_event_id"])
    after = await asyncio.to_thread(run_verify, stack, case["reference"])
    assert after.returncode == 1, after.stdout + after.stderr
    assert "VERÄNDERT" in after.stdout
    assert "passt nicht zur gespeicherten Prüfsumme" in after.stdout


async def test_transcript_command_posts_readable_pdf(
    stack: Stack, anna: AsyncClient
) -> None:
    """!transcript posts Verlauf-<ref>.pdf; it holds the reference, both messages in
    order with umlauts and Cyrillic, page numbers, and not the command itself."""
    case, room_id = await chat(stack, anna)
    await say(anna, room_id, "!transcript")
    event = await wait_for_file(anna, room_id, f"Verlauf-{case['reference']}.pdf")
    downloaded = await anna.download(event.url)
    pdf = downloaded.body
    assert pdf.startswith(b"%PDF")
    text, _ = pdf_text(pdf)
    flat = squash(text)
    assert case["reference"] in flat
    assert "Seite 1 von" in flat
    assert "noch offen" in flat
    assert "Привет" in flat and "Здравствуйте" in flat and "Grüße" in flat
    assert flat.index("Привет") < flat.index("Здравствуйте")
    assert "!transcript" not in flat
    assert stored_final_hash(pdf) is not None


async def test_citizen_download_only_own_case(stack: Stack, anna: AsyncClient) -> None:
    """The citizen gets their transcript as a PDF attachment; another case's token
    is refused with 403, no token with 401, an unknown case with 404."""
    case, _ = await chat(stack, anna)
    other = await open_case(stack)
    status, pdf, headers = await get_pdf(stack, case["case_id"], case["token"])
    assert status == 200
    assert pdf.startswith(b"%PDF")
    assert headers["Content-Type"] == "application/pdf"
    disposition = headers["Content-Disposition"]
    assert disposition == f'attachment; filename="Verlauf-{case["reference"]}.pdf"'
    assert case["reference"] in squash(pdf_text(pdf)[0])
    assert headers["X-Transcript-Hash"] == stored_final_hash(pdf)
    status, body, _ = await get_pdf(stack, case["case_id"], other["token"])
    assert status == 403 and b"BC_FORBIDDEN" in body
    status, _, _ = await get_pdf(stack, case["case_id"], None)
    assert status == 401
    status, _, _ = await get_pdf(stack, "no-such-case", case["token"])
    assert status == 404


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
