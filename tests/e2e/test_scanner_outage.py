"""A clamd outage holds a citizen's file (never lost, never passed unscanned) and
delivers it exactly once when clamd is back."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, RoomMessageImage

from bots.scanner.clamd_runner import ClamdProcess, free_tcp_port, write_signatures

from .conftest import ANNA, staff_client
from .stack import Stack, make_stack
from .test_attachments import png, upload
from .test_live_chat import api, join_case_room, open_case
from .test_media_module import download_from_synapse, upload_to_synapse

pytestmark = pytest.mark.e2e

MAX_UPLOAD = 20 << 20


@pytest.fixture(scope="module")
def clamd_port() -> int:
    """The port of the external clamd, fixed before the stack is configured."""
    return free_tcp_port()


@pytest.fixture(scope="module")
def outage_stack(
    tmp_path_factory: pytest.TempPathFactory, clamd_port: int
) -> Iterator[Stack]:
    """A stack of its own that scans with an external clamd on ``clamd_port``."""
    s = make_stack(
        tmp_path_factory.mktemp("outage"),
        scanner={"clamd": f"tcp://127.0.0.1:{clamd_port}"},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
async def clamd(tmp_path: Path, clamd_port: int) -> AsyncIterator[ClamdProcess]:
    """The external clamd (not started), with its own signature folder."""
    signatures = tmp_path / "signatures"
    write_signatures(signatures)
    process = ClamdProcess(
        tmp_path / "clamd",
        max_upload_size=MAX_UPLOAD,
        tcp_port=clamd_port,
        unix_socket=False,
        signature_dir=signatures,
    )
    try:
        yield process
    finally:
        await process.stop()


async def images_seen(
    client: AsyncClient, room_id: str, seconds: float, stop_after: int | None = None
) -> list[Any]:
    """The m.image events reaching ``room_id`` while syncing for ``seconds`` (or
    until ``stop_after`` of them arrived)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    found: list[Any] = []
    while loop.time() < deadline and len(found) < (stop_after or len(found) + 1):
        response = await client.sync(timeout=500)
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if isinstance(event, RoomMessageImage):
                found.append(event)
    return found


async def attachment_events(stack: Stack, case: dict[str, Any]) -> list[dict[str, Any]]:
    status, body = await api(
        stack,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after=0",
        token=case["token"],
    )
    assert status == 200, body
    return [e for e in body["events"] if e["type"] == "attachment"]


async def test_file_held_while_clamd_down_and_delivered_once_after(
    outage_stack: Stack, clamd: ClamdProcess
) -> None:
    """With clamd stopped a PNG is answered 202 and shown as "wird geprüft", staff
    see nothing; once clamd is back staff get the identical bytes exactly once and
    the citizen timeline says delivered."""
    stack = outage_stack
    await clamd.start()
    await clamd.stop()
    anna = await staff_client(stack, ANNA)
    try:
        case = await open_case(stack)
        room_id = await join_case_room(anna, case["reference"])
        data = png(5, 4)

        status, body = await upload(stack, case, "Schaden.png", data)
        assert status == 202, body
        assert body["state"] == "pending"
        attachment_id = body["attachment_id"]
        held = await attachment_events(stack, case)
        assert [(e["attachment_id"], e["delivery"]) for e in held] == [
            (attachment_id, "scanning")
        ]
        assert "wird geprüft" in held[0]["body"]
        assert await images_seen(anna, room_id, 7) == []

        await clamd.start()
        images = await images_seen(anna, room_id, 40, stop_after=1)
        # Long enough for further retry rounds to deliver a duplicate.
        images += await images_seen(anna, room_id, 6)
        assert len(images) == 1, images
        content = images[0].source["content"]
        assert content["de.buergerchat.attachment_id"] == attachment_id
        assert (
            content["de.buergerchat.scan"]["sha256"] == hashlib.sha256(data).hexdigest()
        )
        downloaded = await anna.download(images[0].url)
        assert downloaded.body == data
        delivered = [
            e for e in await attachment_events(stack, case) if e["state"] == "delivered"
        ]
        assert [e["attachment_id"] for e in delivered] == [attachment_id]
    finally:
        await anna.close()


async def test_synapse_refuses_uploads_while_clamd_down(
    outage_stack: Stack, clamd: ClamdProcess
) -> None:
    """Fail closed in Synapse too: with clamd stopped any client's direct upload is
    refused with 503 and a message saying to try later, and nothing is stored;
    with clamd back the same PNG is accepted and downloads byte for byte."""
    stack = outage_stack
    anna = await staff_client(stack, ANNA)
    try:
        data = png(6, 3)
        status, body = await upload_to_synapse(
            stack, anna.access_token, data, "Plan.png", "image/png"
        )
        assert status == 503, body
        assert "try again later" in body["error"]

        await clamd.start()
        status, body = await upload_to_synapse(
            stack, anna.access_token, data, "Plan.png", "image/png"
        )
        assert status == 200, body
        status, downloaded = await download_from_synapse(
            stack, anna.access_token, body["content_uri"]
        )
        assert (status, downloaded) == (200, data)
    finally:
        await anna.close()
