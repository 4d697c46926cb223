"""Attachments end to end with the real clamd: nothing infected or disguised reaches
the other side; clean files arrive byte for byte."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from nio import (
    AsyncClient,
    DownloadError,
    RoomMessageFile,
    RoomMessageImage,
    RoomMessageNotice,
)

from bots.scanner.clamd_runner import TESTFILES_DIR, eicar

from .conftest import ANNA, staff_client
from .samples import png
from .stack import Stack, make_stack
from .test_live_chat import (
    api,
    join_case_room,
    metric,
    open_case,
    scrape,
    wait_for_event,
    wait_for_room_event,
)

pytestmark = pytest.mark.e2e


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def docx_with(member: bytes) -> bytes:
    """A valid Word package that also carries ``member`` (clamd unpacks it)."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Override PartName="/word/document.xml" '
            f'ContentType="{main}.main+xml"/></Types>',
        )
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("word/media/readme.txt", member)
    return buffer.getvalue()


async def upload(
    stack: Stack,
    case: dict[str, Any],
    name: str,
    data: bytes,
    client_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    if client_id:
        form.add_field("client_id", client_id)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/attachments",
            data=form,
            headers={"Authorization": f"Bearer {case['token']}"},
        ) as response:
            return response.status, await response.json()


async def room_events(
    client: AsyncClient, room_id: str, kinds: tuple[type, ...], predicate: Any
) -> Any:
    return await wait_for_room_event(
        client,
        room_id,
        lambda e: isinstance(e, kinds) and predicate(e),
        what=f"a matching {kinds}",
    )


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [("Schlagloch.png", png(), "image/png"), ("Antrag.pdf", PDF, "application/pdf")],
)
async def test_clean_file_reaches_staff_byte_for_byte(
    stack: Stack, anna: AsyncClient, name: str, data: bytes, mime: str
) -> None:
    """A clean PNG/PDF is posted by the ghost with verdict and hash; staff download
    exactly the bytes the citizen sent, and a resend with the same client id is
    answered with the same attachment."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    client_id = str(uuid.uuid4())
    status, body = await upload(stack, case, name, data, client_id)
    assert status == 201, body
    assert body["state"] == "delivered"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    kind = RoomMessageImage if mime.startswith("image/") else RoomMessageFile
    event = await room_events(anna, room_id, (kind,), lambda e: e.body == name)
    scan = event.source["content"]["de.buergerchat.scan"]
    assert scan["verdict"] == "clean" and scan["sha256"] == body["sha256"]
    assert event.source["content"]["info"]["mimetype"] == mime
    downloaded = await anna.download(event.url)
    assert downloaded.body == data
    again_status, again = await upload(stack, case, name, data, client_id)
    assert (again_status, again["attachment_id"]) == (201, body["attachment_id"])
    timeline, _ = await wait_for_event(
        stack, case, lambda e: e["type"] == "attachment" and e["state"] == "delivered"
    )
    assert timeline["attachment_id"] == body["attachment_id"]


async def test_scan_outcomes_are_counted_in_metrics(stack: Stack) -> None:
    """/metrics counts each verdict: a clean PDF and an infected document."""
    before = await scrape(stack)
    case = await open_case(stack)
    status, _ = await upload(stack, case, "Antrag.pdf", PDF)
    assert status == 201
    status, _ = await upload(stack, case, "Brief.docx", docx_with(eicar()))
    assert status == 422
    after = await scrape(stack)
    name = "buergerchat_outcomes_total"
    for outcome in ("clean", "infected"):
        grew = metric(after, name, part="scan", outcome=outcome) - metric(
            before, name, part="scan", outcome=outcome
        )
        assert grew == 1, (outcome, grew)
    for outcome in ("refused", "held"):
        assert metric(after, name, part="scan", outcome=outcome) == metric(
            before, name, part="scan", outcome=outcome
        ), outcome
    assert 'outcome="parked",part="mail"' in after  # every outcome shown from 0


async def test_eicar_in_document_is_refused_and_staff_told(
    stack: Stack, anna: AsyncClient
) -> None:
    """EICAR inside an allowed office file: 422 BC_INFECTED, staff get a notice with
    the signature and no file."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    status, body = await upload(stack, case, "Brief.docx", docx_with(eicar()))
    assert status == 422, body
    assert body["errcode"] == "BC_INFECTED"
    assert "EICAR" in body["signature"]
    notice = await room_events(
        anna, room_id, (RoomMessageNotice,), lambda e: "Brief.docx" in e.body
    )
    assert "EICAR" in notice.body


async def test_plain_eicar_never_delivered(stack: Stack) -> None:
    """The bare EICAR string is refused (by content type before any scan)."""
    case = await open_case(stack)
    status, body = await upload(stack, case, "eicar.pdf", eicar())
    assert status in (415, 422), body
    assert body["errcode"] in ("BC_UNSUPPORTED_MEDIA_TYPE", "BC_INFECTED")


async def test_clamav_testfile_sample_refused(stack: Stack) -> None:
    """clamav-testfiles' clam.pdf passes the allow-list but clamd refuses it."""
    sample = TESTFILES_DIR / "clam.pdf"
    if not sample.is_file():
        pytest.fail("apt-get install clamav-testfiles")
    case = await open_case(stack)
    status, body = await upload(stack, case, "clam.pdf", sample.read_bytes())
    assert status == 422, body
    assert body["errcode"] == "BC_INFECTED"
    assert "clam.pdf" in body["signature"]


async def test_executable_named_png_refused_by_allow_list(stack: Stack) -> None:
    """A Windows program named foto.png is refused by its content (415)."""
    case = await open_case(stack)
    exe = (TESTFILES_DIR / "clam.exe").read_bytes()
    status, body = await upload(stack, case, "foto.png", exe)
    assert status == 415, body
    assert body["errcode"] == "BC_UNSUPPORTED_MEDIA_TYPE"
    assert "looks like" in body["error"]


async def test_oversized_file_refused(stack: Stack) -> None:
    """A file above homeserver.max_upload_size_mb is refused with 413."""
    case = await open_case(stack)
    status, body = await upload(stack, case, "big.png", png() + b"\0" * (21 << 20))
    assert status == 413, body
    assert body["errcode"] == "BC_TOO_LARGE"


@pytest.fixture(scope="module")
def unguarded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose Synapse runs without our media module (``scanner.
    synapse_module: false``), like a homeserver the town cannot add modules to:
    an infected staff upload then reaches the media repository, and only the
    scanner bot stands between it and the citizen."""
    s = make_stack(
        tmp_path_factory.mktemp("unguarded"), scanner={"synapse_module": False}
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_staff_eicar_redacted_quarantined_and_staff_told(
    unguarded_stack: Stack,
) -> None:
    """EICAR sent by staff in a case room is redacted, its media quarantined in
    Synapse (no download any more, not even by its sender), never offered to the
    citizen, and the sender gets a notice why."""
    stack = unguarded_stack
    anna = await staff_client(stack, ANNA)
    try:
        case = await open_case(stack)
        room_id = await join_case_room(anna, case["reference"])
        response, _ = await anna.upload(
            io.BytesIO(eicar()),
            content_type="text/plain",
            filename="hinweis.txt",
            filesize=len(eicar()),
        )
        mxc = response.content_uri
        assert (await anna.download(mxc)).body == eicar()  # it did get in
        sent = await anna.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.file",
                "body": "hinweis.txt",
                "url": mxc,
                "info": {"mimetype": "text/plain", "size": len(eicar())},
            },
        )
        notice = await room_events(
            anna, room_id, (RoomMessageNotice,), lambda e: "hinweis.txt" in e.body
        )
        assert "Schadsoftware erkannt: Buergerchat.Test.EICAR" in notice.body
        assert "gesperrt" in notice.body
        fetched = await anna.room_get_event(room_id, sent.event_id)
        assert "url" not in fetched.event.source["content"], "event was not redacted"
        download = await anna.download(mxc)
        assert isinstance(download, DownloadError), "media was not quarantined"
        assert download.status_code == "M_NOT_FOUND"
        _, events = await api(
            stack,
            "GET",
            f"/api/v1/cases/{case['case_id']}/events?after=0",
            token=case["token"],
        )
        assert not any(
            e["type"] == "attachment" and e.get("state") == "delivered"
            for e in events["events"]
        )
    finally:
        await anna.close()


async def test_staff_clean_file_downloadable_by_citizen(
    stack: Stack, anna: AsyncClient
) -> None:
    """A clean file from staff appears in the citizen timeline and downloads intact."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    data = PDF
    response, _ = await anna.upload(
        io.BytesIO(data),
        content_type="application/pdf",
        filename="Bescheid.pdf",
        filesize=len(data),
    )
    await anna.room_send(
        room_id,
        "m.room.message",
        {
            "msgtype": "m.file",
            "body": "Bescheid.pdf",
            "url": response.content_uri,
            "info": {"mimetype": "application/pdf", "size": len(data)},
        },
    )
    event, _ = await wait_for_event(
        stack,
        case,
        lambda e: (
            e["type"] == "attachment"
            and e["sender"] == "staff"
            and e.get("state") == "delivered"
        ),
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/attachments/"
            f"{event['attachment_id']}",
            headers={"Authorization": f"Bearer {case['token']}"},
        ) as r:
            assert r.status == 200
            assert await r.read() == data


async def test_openapi_documents_the_attachment_routes(stack: Stack) -> None:
    """The served OpenAPI document names both routes with every status the upload
    answers in these tests, and the error schema's refs resolve."""
    status, spec = await api(stack, "GET", "/api/v1/openapi.json")
    assert status == 200
    post = spec["paths"]["/api/v1/cases/{case_id}/attachments"]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and "client_id" in form["properties"]
    assert {"201", "202", "413", "415", "422"} <= set(post["responses"])
    get = spec["paths"]["/api/v1/cases/{case_id}/attachments/{attachment_id}"]["get"]
    assert "200" in get["responses"] and "404" in get["responses"]
    schemas = spec["components"]["schemas"]
    for ref in ("Attachment", "InfectedError", "Error"):
        assert ref in schemas
    assert "BC_INFECTED" in schemas["Error"]["properties"]["errcode"]["examples"]
