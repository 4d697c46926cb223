"""Queue, offline form and resume link in the citizen widget, in Chromium against the
real stack (routing by departments.yaml, offline messages, mail to a Maildir).

The town: Thursday 10:00. Anna alone staffs the Bürgerbüro and takes one chat at a
time, so a second citizen queues; Bauen und Wohnen has no Thursday hours (closed,
next opening Friday 9:00)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from bridge.tokens import token_hash

from . import test_widget
from .a11y import assert_accessible, new_context
from .conftest import ANNA, BERND, online, staff_client
from .samples import query
from .stack import Stack, make_stack, shared_rules
from .test_attachments import png
from .test_live_chat import api
from .test_widget import join_case_room, send, storage_key, stored, wait_for_text

browser = test_widget.browser
page = test_widget.page

pytestmark = pytest.mark.e2e

LINK = re.compile(r"#bc-resume=(c_[A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]+)")


def department(data: dict[str, Any], dep_id: str) -> dict[str, Any]:
    return next(d for d in data["departments"] if d["id"] == dep_id)


def town_rules(data: dict[str, Any]) -> None:
    shared_rules(data)
    data["routing"]["inactivity_close_minutes"] = 0
    department(data, "buergerbuero")["max_cases_per_staff"] = 1
    bauen = department(data, "bauen")
    bauen["hours"].pop("do")
    bauen["fallback"] = None


def started(base: Any, now: str) -> Stack:
    s = make_stack(base, edit_rules=town_rules)
    s.extra_env = {"BUERGERCHAT_NOW": now}
    s.start()
    return s


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = started(tmp_path_factory.mktemp("widget-town"), "2026-11-19T10:00:00+01:00")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def closing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Thursday 11:59:20: the Bürgerbüro's morning hours end 40 s after start."""
    s = started(tmp_path_factory.mktemp("widget-closing"), "2026-11-19T11:59:20+01:00")
    try:
        yield s
    finally:
        s.stop()


async def open_in(stack: Stack, dep: str) -> dict[str, Any]:
    status, case = await api(
        stack,
        "POST",
        "/api/v1/cases",
        json={"department": dep, "consent": True, "name": "Erste Person"},
    )
    assert status == 201, case
    return case


async def close_case(stack: Stack, reference: str) -> None:
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
        )
    finally:
        await anna.close()


async def open_widget(page: Page, stack: Stack) -> None:
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").click()


def mails(stack: Stack) -> list[email.message.EmailMessage]:
    found = []
    for folder in ("new", "cur"):
        for path in sorted((stack.data_dir / "mail" / folder).glob("*")):
            found.append(
                email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            )
    return found


async def resume_link(stack: Stack, reference: str, count: int) -> str:
    """The personal link in the count-th "Es gibt eine Antwort" mail of the case."""
    for _ in range(150):
        answers = [
            m
            for m in mails(stack)
            if reference in str(m["Subject"]) and "Antwort" in str(m["Subject"])
        ]
        if len(answers) >= count:
            body = answers[count - 1].get_body(("plain",)).get_content()
            match = LINK.search(body)
            assert match, body
            return f"{stack.bridge_url}/demo{match.group(0)}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"no answer mail for {reference}")


# --- status line and queue (routing) ----------------------------------------------


async def test_status_line_names_live_until_and_next_consultation(
    town: Stack, page: Page
) -> None:
    """'Jetzt live bis 12:00' for the Bürgerbüro, 'Nächste Sprechzeit: Fr 9:00' for
    the closed Bauen und Wohnen, whose button then reads 'Nachricht hinterlassen'
    and opens the offline form instead of a chat."""
    await open_widget(page, town)
    office = page.get_by_role("radio", name=re.compile("Bürgerbüro"))
    building = page.get_by_role("radio", name=re.compile("Bauen und Wohnen"))
    await expect(office).to_have_accessible_name(re.compile("Jetzt live bis 12:00"))
    await expect(building).to_have_accessible_name(
        re.compile("Nächste Sprechzeit: Fr 9:00")
    )
    await office.check()
    await expect(page.get_by_role("button", name="Chat starten")).to_be_visible()
    await building.check()
    await page.get_by_role("button", name="Nachricht hinterlassen").click()
    await expect(
        page.get_by_role("heading", name="Nachricht hinterlassen")
    ).to_be_visible()
    await expect(page.get_by_text("Nächste Sprechzeit: Fr 9:00")).to_be_visible()
    assert "case_id" not in await stored(page, town)


async def test_queue_position_counts_down_until_it_is_the_citizens_turn(
    town: Stack, page: Page
) -> None:
    """Anna is busy with one chat and another citizen waits: the widget says
    'Nr. 2 … ca. 16 Min.', then 'Nr. 1 … ca. 8 Min.' as the queue moves, then the
    normal chat; a message written while waiting reaches Anna."""
    async with online(town, ANNA):  # Anna has Element open all the while
        busy = await open_in(town, "buergerbuero")
        ahead = await open_in(town, "buergerbuero")
        assert ahead["state"] == "queued", ahead
        reference = await test_widget.start_chat(page, town, "Quentin Queue")
        queue = page.get_by_role("status").filter(has_text="Warteschlange")
        await expect(queue).to_have_text(
            "Sie sind Nr. 2 in der Warteschlange – geschätzte Wartezeit ca. 16 Min."
        )
        await assert_accessible(page, "queue")
        waiting_text = "Ich warte gern, es geht um meinen Reisepass."
        await send(page, waiting_text)
        sending = page.get_by_text("wird gesendet…")
        await expect(sending).to_have_count(0, timeout=60_000)

        await close_case(town, busy["reference"])
        await expect(queue).to_have_text(
            "Sie sind Nr. 1 in der Warteschlange – geschätzte Wartezeit ca. 8 Min.",
            timeout=60_000,
        )
        await page.reload()  # the position survives a reload
        await expect(queue).to_have_text(re.compile("Sie sind Nr. 1 "), timeout=60_000)

        await close_case(town, ahead["reference"])
        await expect(queue).to_be_hidden(timeout=60_000)
        await expect(page.get_by_role("log")).to_contain_text("an der Reihe")
        anna = await staff_client(town, ANNA)
        try:
            room_id = await join_case_room(anna, reference)
            await wait_for_text(anna, room_id, waiting_text)
            await anna.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "Guten Tag!"}
            )
            answer = page.get_by_role("log").get_by_text("Guten Tag!")
            await expect(answer).to_be_visible(timeout=60_000)
            await anna.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
            )
        finally:
            await anna.close()


# --- offline form (offline messages) --------------------------------------------


async def test_offline_form_checks_fields_keeps_the_draft_and_sends_once(
    town: Stack, page: Page
) -> None:
    """Each missing field is named at the field; the server's verdict on the e-mail
    shows at the e-mail field; a reload keeps what was typed; sent while the network
    is down it goes out once when it is back, with its photo uploaded afterwards,
    and the citizen reads the reference and what happens next."""
    await open_widget(page, town)
    await page.get_by_role("radio", name=re.compile("Bauen und Wohnen")).check()
    await page.get_by_role("button", name="Nachricht hinterlassen").click()
    send_button = page.get_by_role("button", name="Nachricht senden")
    await send_button.click()
    description = page.get_by_label("Ihr Anliegen")
    await expect(description).to_be_focused()
    await expect(description).to_have_attribute("aria-invalid", "true")
    await expect(
        page.get_by_text("Bitte beschreiben Sie Ihr Anliegen.")
    ).to_be_visible()
    await expect(page.get_by_text("Bitte geben Sie Ihren Namen an.")).to_be_visible()
    await expect(
        page.get_by_text(re.compile("Bitte geben Sie eine E-Mail-Adresse oder"))
    ).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text(
        "Bitte prüfen Sie die markierten Angaben."
    )
    await assert_accessible(page, "offline form with errors")

    text = "Die Straßenlaterne vor Hausnummer 12 ist seit einer Woche dunkel."
    await description.fill(text)
    await page.get_by_label("Ihr Name", exact=True).fill("Olga Offline")
    await page.get_by_label("E-Mail-Adresse").fill("olga@rathaus.d")
    await page.get_by_role("checkbox").check()
    await send_button.click()
    email_field = page.get_by_label("E-Mail-Adresse")
    await expect(email_field).to_have_attribute("aria-invalid", "true", timeout=60_000)
    await expect(page.locator("#bc-off-email-err")).to_contain_text(
        "keine gültige E-Mail-Adresse"
    )
    assert query(town, "SELECT count(*) FROM offline_messages")[0][0] == 0

    await email_field.fill("olga@example.org")
    await page.reload()
    await expect(page.get_by_label("Ihr Anliegen")).to_have_value(text)
    await expect(page.get_by_label("E-Mail-Adresse")).to_have_value("olga@example.org")
    client_id = (await stored(page, town))["offline"]["client_id"]

    await page.get_by_role("button", name="Datei anhängen").click()
    chooser = page.locator("buergerchat-widget form.offline input[type=file]")
    await chooser.set_input_files(
        {"name": "Laterne.png", "mimeType": "image/png", "buffer": png()}
    )
    await expect(page.get_by_text("Laterne.png")).to_be_visible()
    await page.context.set_offline(True)
    await page.get_by_role("button", name="Nachricht senden").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Keine Verbindung", timeout=60_000
    )
    assert (await stored(page, town))["offline"]["description"] == text
    await page.context.set_offline(False)

    # One confirmation, in the log, that stays (also on another device); the
    # composer says nobody reads along and how the answer comes.
    log = page.get_by_role("log")
    confirmation = log.get_by_text(re.compile("Ihre Nachricht ist unter BC-"))
    await expect(confirmation).to_be_visible(timeout=45_000)
    reference = (await stored(page, town))["reference"]
    await expect(confirmation).to_contain_text(reference)
    await expect(confirmation).to_contain_text("per E-Mail an olga@example.org")
    chat = page.locator("buergerchat-widget .view.chat")
    assert (await chat.inner_text()).count("eingegangen") == 1
    composer = page.get_by_label("Ihre Nachricht")
    await expect(composer).to_have_attribute("placeholder", "Etwas ergänzen…")
    await expect(page.locator("buergerchat-widget #bc-hint")).to_have_text(
        "Gerade liest niemand mit. Was Sie ergänzen, wird gespeichert; die "
        "Antwort kommt per E-Mail an olga@example.org."
    )
    log = page.get_by_role("log")
    await expect(log.get_by_text(text, exact=True)).to_be_visible(timeout=60_000)
    photo = log.locator(".msg.file", has_text="Laterne.png")
    await expect(photo).to_contain_text("zugestellt", timeout=60_000)
    rows = query(
        town, "SELECT count(*) FROM offline_messages WHERE client_id = ?", client_id
    )
    assert rows[0][0] == 1
    assert "offline" not in await stored(page, town)
    await assert_accessible(page, "offline message sent")


async def test_resume_link_opens_the_conversation_and_an_expired_one_says_so(
    town: Stack, browser: Browser
) -> None:
    """The link in the answer mail opens the conversation with the staff answer in
    a fresh browser (the hash then leaves the address bar) and the citizen can
    reply; an expired link says so and how to go on."""
    status, case = await api(
        town,
        "POST",
        "/api/v1/offline-messages",
        json={
            "client_id": "resume-test-1",
            "department": "bauen",
            "description": "Wann wird mein Bauantrag bearbeitet?",
            "name": "Rita Resume",
            "email": "rita@example.org",
            "consent": True,
            "language": "de",
        },
    )
    assert status == 201, case
    bernd = await staff_client(town, BERND)  # Bauen und Wohnen
    try:
        room_id = await join_case_room(bernd, case["reference"])
        answer = "Ihr Antrag ist nächste Woche dran."
        await bernd.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": answer}
        )
        link = await resume_link(town, case["reference"], 1)

        context = await new_context(browser, viewport={"width": 1280, "height": 800})
        try:
            tab = await context.new_page()
            await tab.goto(link)
            log = tab.get_by_role("log")
            await expect(log.get_by_text(answer)).to_be_visible(timeout=60_000)
            await expect(
                tab.get_by_text(f"Vorgang {case['reference']}")
            ).to_be_visible()
            assert "bc-resume" not in tab.url
            saved = json.loads(
                await tab.evaluate("k => localStorage.getItem(k)", storage_key(town))
            )
            assert saved["case_id"] == case["case_id"]
            reply = "Danke, dann warte ich."
            await send(tab, reply)
            await wait_for_text(bernd, room_id, reply)
        finally:
            await context.close()

        await bernd.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Noch etwas."}
        )
        second = await resume_link(town, case["reference"], 2)
    finally:
        await bernd.close()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    token = LINK.search(second).group(2)  # type: ignore[union-attr]
    changed = query(
        town,
        "UPDATE case_tokens SET expires_at = ? WHERE token_hash = ? "
        "AND purpose = 'resume' RETURNING token_hash",
        yesterday,
        token_hash(token),
    )
    assert len(changed) == 1
    context = await new_context(browser, viewport={"width": 1280, "height": 800})
    try:
        tab = await context.new_page()
        await tab.goto(second)
        await expect(
            tab.get_by_text(re.compile("Dieser Link ist abgelaufen"))
        ).to_be_visible(timeout=60_000)
        await expect(tab.get_by_text(re.compile("neue Nachricht"))).to_be_visible()
        await expect(tab.get_by_role("button", name="Chat starten")).to_be_visible()
        assert "bc-resume" not in tab.url
    finally:
        await context.close()


# --- end of live hours while queued (routing + offline messages) ---------------


@pytest.fixture
async def closing_page(browser: Browser) -> AsyncIterator[Page]:
    context = await new_context(browser, viewport={"width": 1280, "height": 800})
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def test_queue_closing_at_the_end_of_hours_turns_the_chat_into_a_message(
    closing: Stack, closing_page: Page
) -> None:
    """Still queued at 12:00: the widget says the hours are over and offers
    'Nachricht hinterlassen'; the form starts with what the citizen already wrote
    and sending it keeps the same case (reference) as an offline message."""
    page = closing_page
    await open_in(closing, "buergerbuero")  # Anna's one chat
    reference = await test_widget.start_chat(page, closing, "Konrad Kurz")
    await expect(page.get_by_text(re.compile("Sie sind Nr. 1"))).to_be_visible()
    written = "Ich brauche eine Meldebescheinigung."
    await send(page, written)
    await expect(page.get_by_text("wird gesendet…")).to_have_count(0, timeout=60_000)

    offer = page.get_by_role("button", name="Nachricht hinterlassen")
    await expect(offer).to_be_visible(timeout=120_000)
    await expect(page.get_by_role("log")).to_contain_text("Die Sprechzeit ist zu Ende")
    await expect(page.locator("buergerchat-widget .queue")).to_be_hidden()
    await offer.click()
    await expect(page.get_by_label("Ihr Anliegen")).to_have_value(written)
    await expect(page.get_by_label("Ihr Name", exact=True)).to_have_value("Konrad Kurz")
    await page.get_by_label("Telefonnummer").fill("07205 98765")
    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Nachricht senden").click()
    # One confirmation in the log; the composer says the answer comes by phone.
    confirmation = page.get_by_role("log").get_by_text(
        re.compile(f"Ihre Nachricht ist unter {reference} eingegangen")
    )
    await expect(confirmation).to_be_visible(timeout=60_000)
    await expect(confirmation).to_contain_text("telefonisch unter 07205 98765")
    await expect(page.locator("buergerchat-widget #bc-hint")).to_contain_text(
        "die Antwort kommt telefonisch unter 07205 98765"
    )
    saved = await stored(page, closing)
    assert saved["reference"] == reference and "offline" not in saved
    await expect(
        page.get_by_role("button", name="Nachricht hinterlassen")
    ).to_be_hidden()
