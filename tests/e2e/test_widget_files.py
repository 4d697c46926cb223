"""Files in the citizen widget, in Chromium against the real stack with the real
clamd: attachments with progress and scan states, and the transcript download."""

from __future__ import annotations

import base64
import io
import re

import pytest
from nio import RoomMessageImage, RoomMessageNotice
from playwright.async_api import Page, expect
from pypdf import PdfReader

from bots.scanner.clamd_runner import eicar

from . import test_widget
from .a11y import assert_accessible
from .conftest import ANNA, staff_client
from .samples import png
from .stack import Stack
from .test_attachments import docx_with, room_events
from .test_widget import join_case_room, send, start_chat, wait_for_text

# The browser and a fresh profile per test, as in the widget's main tests.
browser = test_widget.browser
page = test_widget.page

pytestmark = pytest.mark.e2e


def file_input(page: Page):  # noqa: ANN201
    return page.locator("buergerchat-widget .composer input[type=file]")


async def drop(page: Page, name: str, data: bytes, mime: str) -> None:
    """Drag a file from the desktop onto the chat, as the browser reports it."""
    transfer = await page.evaluate_handle(
        """([name, b64, mime]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: mime}));
        return dt;
    }""",
        [name, base64.b64encode(data).decode(), mime],
    )
    target = page.get_by_role("log")
    for kind in ("dragenter", "dragover"):
        await target.dispatch_event(kind, {"dataTransfer": transfer})
    await expect(page.get_by_text("Datei hier ablegen")).to_be_visible()
    await target.dispatch_event("drop", {"dataTransfer": transfer})
    await expect(page.get_by_text("Datei hier ablegen")).to_be_hidden()


async def test_photo_uploads_with_progress_and_is_previewed_once_delivered(
    stack: Stack, page: Page
) -> None:
    """The attach button sends a PNG: progress while uploading (slow line), then
    "zugestellt" with a preview of the citizen's own picture; staff get the image."""
    reference = await start_chat(page, stack, "Felix Foto")
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        picture = png(260, 260, noisy=True)  # about 200 kB
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 20,
                "downloadThroughput": -1,
                "uploadThroughput": 64 * 1024,
            },
        )
        await file_input(page).set_input_files(
            {"name": "Schlagloch.png", "mimeType": "image/png", "buffer": picture}
        )
        bubble = page.locator(".msg.file", has_text="Schlagloch.png")
        await expect(bubble).to_contain_text(
            re.compile(r"wird hochgeladen… \d+ %"), timeout=10_000
        )
        await expect(bubble.get_by_role("progressbar")).to_be_visible()
        await cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            },
        )
        await expect(bubble).to_contain_text("zugestellt", timeout=60_000)
        preview = bubble.get_by_role("img", name="Schlagloch.png")
        await expect(preview).to_be_visible()
        assert (await preview.get_attribute("src") or "").startswith("blob:")
        width = await preview.evaluate("img => img.naturalWidth")
        assert width == 260
        await expect(bubble.get_by_role("progressbar")).to_be_hidden()
        await expect(page.locator(".msg.file")).to_have_count(1)
        await assert_accessible(page, "chat with a delivered file")

        event = await room_events(
            anna, room_id, (RoomMessageImage,), lambda e: e.body == "Schlagloch.png"
        )
        assert (await anna.download(event.url)).body == picture
    finally:
        await anna.close()


async def test_infected_drop_and_disallowed_type_are_refused_with_reasons(
    stack: Stack, page: Page
) -> None:
    """A Word file carrying EICAR dropped on the chat is refused as malware; the
    bare EICAR text through the attach button is refused as a type not allowed;
    staff are told about the malware and receive no file."""
    reference = await start_chat(page, stack, "Viktor Virus")
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await drop(
            page,
            "Antrag.docx",
            docx_with(eicar()),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
        infected = page.locator(".msg.file", has_text="Antrag.docx")
        await expect(infected).to_contain_text(
            re.compile("abgewiesen: .*Schadsoftware"), timeout=60_000
        )
        await expect(infected).to_contain_text("wurde nicht übermittelt")
        await expect(infected).to_have_class(re.compile(r"\bfailed\b"))

        await file_input(page).set_input_files(
            {"name": "eicar.txt", "mimeType": "text/plain", "buffer": eicar()}
        )
        disallowed = page.locator(".msg.file", has_text="eicar.txt")
        await expect(disallowed).to_contain_text(
            "abgewiesen: Dieser Dateityp ist nicht erlaubt", timeout=30_000
        )
        await expect(page.locator(".msg.file")).to_have_count(2)
        await expect(infected.get_by_role("img")).to_have_count(0)
        await assert_accessible(page, "chat with refused files")

        notice = await room_events(
            anna,
            room_id,
            (RoomMessageNotice,),
            lambda e: "Antrag.docx" in e.body and "Schadsoftware" in e.body,
        )
        assert "nicht zugestellt" in notice.body
        # The chat goes on: a message after the refusals still arrives.
        await send(page, "Dann schicke ich es per Post.")
        await wait_for_text(anna, room_id, "Dann schicke ich es per Post.")
    finally:
        await anna.close()


async def test_closed_chat_offers_the_transcript_as_pdf_download(
    stack: Stack, page: Page
) -> None:
    """After !close the citizen downloads "Verlauf-<reference>.pdf" with the
    conversation in it."""
    reference = await start_chat(page, stack, "Tina Transkript")
    text = "Wann hat das Standesamt am Freitag geöffnet?"
    await send(page, text)
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await wait_for_text(anna, room_id, text)
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!close erledigt"}
        )
    finally:
        await anna.close()
    await expect(page.get_by_text("Dieses Anliegen ist abgeschlossen.")).to_be_visible(
        timeout=60_000
    )
    button = page.get_by_role("button", name="Gesprächsverlauf als PDF herunterladen")
    await expect(button).to_be_visible()
    await assert_accessible(page, "closed case with the transcript link")
    async with page.expect_download(timeout=60_000) as info:
        await button.click()
    download = await info.value
    assert download.suggested_filename == f"Verlauf-{reference}.pdf"
    pdf = open(await download.path(), "rb").read()  # noqa: ASYNC230
    assert pdf.startswith(b"%PDF")
    flat = " ".join(
        " ".join((p.extract_text() or "").split())
        for p in PdfReader(io.BytesIO(pdf)).pages
    )
    assert reference in flat and text in flat
    await expect(button).to_be_enabled()
