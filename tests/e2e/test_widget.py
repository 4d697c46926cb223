"""The citizen widget in a real browser (Debian's Chromium) on the demo page, against
the real stack: Synapse, bridge, and staff in a Matrix client (matrix-nio)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from nio import AsyncClient, JoinResponse, RoomMessagesResponse, RoomMessageText
from playwright.async_api import Browser, Page, async_playwright, expect

from .a11y import assert_accessible, new_context
from .conftest import ANNA, staff_client
from .stack import Stack, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
REFERENCE = re.compile(r"BC-\d{4}-\d{6}")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (empty localStorage) per test."""
    context = await new_context(browser, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


def storage_key(stack: Stack) -> str:
    return f"buergerchat:{stack.bridge_url}/api/v1"


async def stored(page: Page, stack: Stack) -> dict:
    raw = await page.evaluate("k => localStorage.getItem(k)", storage_key(stack))
    return json.loads(raw) if raw else {}


async def start_chat(page: Page, stack: Stack, name: str) -> str:
    """Open the demo page, start a chat with the Bürgerbüro; returns the reference."""
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").click()
    await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await page.get_by_label("Ihr Name (optional)").fill(name)
    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Chat starten").click()
    return await shown_reference(page)


async def shown_reference(page: Page) -> str:
    """The case reference the chat view shows (Vorgang BC-…)."""
    casebar = page.get_by_text(re.compile(r"Vorgang BC-"))
    await expect(casebar).to_be_visible(timeout=60_000)
    match = REFERENCE.search(await casebar.inner_text())
    assert match, await casebar.inner_text()
    return match.group(0)


async def send(page: Page, text: str, box_name: str = "Ihre Nachricht") -> None:
    box = page.get_by_role("textbox", name=box_name)
    await box.fill(text)
    await box.press("Enter")


async def join_case_room(
    client: AsyncClient, reference: str, within: float = 30
) -> str:
    """Staff side: wait for the invite to the room named after the case, join it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await client.sync(timeout=1000)
        for room_id, room in list(client.invited_rooms.items()):
            if reference in (room.name or ""):
                response = await client.join(room_id)
                assert isinstance(response, JoinResponse), response
                return room_id
    raise AssertionError(f"no invite to the room of {reference} within {within}s")


async def room_texts(client: AsyncClient, room_id: str) -> list[str]:
    response = await client.room_messages(room_id, limit=100)
    assert isinstance(response, RoomMessagesResponse), response
    return [e.body for e in response.chunk if isinstance(e, RoomMessageText)]


async def wait_for_text(
    client: AsyncClient, room_id: str, body: str, within: float = 20
) -> list[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        texts = await room_texts(client, room_id)
        if body in texts:
            return texts
        await asyncio.sleep(0.5)
    raise AssertionError(f"{body!r} did not reach the case room within {within}s")


async def test_citizen_chats_with_staff_and_resumes_after_reload(
    stack: Stack, page: Page
) -> None:
    """Consent is enforced, messages go both ways, a reload restores the chat once."""
    await page.goto(stack.bridge_url + "/demo")
    launcher = page.get_by_role("button", name="Bürgerchat öffnen")
    await expect(launcher).to_be_visible()
    await assert_accessible(page, "closed")
    await launcher.click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(page.get_by_text("Stadt Musterstadt").last).to_be_visible()
    await expect(page.get_by_role("radio").first).to_be_visible()
    await assert_accessible(page, "picker")
    await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await page.get_by_label("Ihr Name (optional)").fill("Erika Mustermann")

    await page.get_by_role("button", name="Chat starten").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Bitte stimmen Sie den Datenschutzhinweisen zu"
    )
    await expect(page.get_by_role("checkbox")).to_be_focused()
    assert "case_id" not in await stored(page, stack)
    await assert_accessible(page, "consent refused")

    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Chat starten").click()
    reference = await shown_reference(page)
    textbox = page.get_by_role("textbox", name="Ihre Nachricht")
    await expect(textbox).to_be_focused()

    log = page.get_by_role("log")
    first = "Guten Tag, ich brauche einen neuen Personalausweis."
    await send(page, first)
    await expect(log.get_by_text(first, exact=True)).to_have_count(1)
    await expect(log.get_by_text("wird gesendet…")).to_have_count(0, timeout=60_000)

    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        assert (await wait_for_text(anna, room_id, first)).count(first) == 1
        answer = "Hallo Frau Mustermann, bitte bringen Sie ein biometrisches Foto mit."
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": answer}
        )
        await expect(log.get_by_text(answer, exact=True)).to_be_visible(timeout=60_000)
        await expect(log.get_by_text("Anna Schmidt", exact=True)).to_be_visible()
        await expect(
            log.get_by_text(re.compile("ist dem Chat beigetreten"))
        ).to_have_count(1)
        await assert_accessible(page, "chat with both sides' messages")
        await page.wait_for_timeout(1000)  # let any stray duplicate arrive
        before = await log.locator(".msg").all_inner_texts()

        await page.reload()
        log = page.get_by_role("log")
        await expect(log).to_be_visible()  # the panel reopens by itself
        await expect(log.get_by_text(answer, exact=True)).to_have_count(1)
        await page.wait_for_timeout(1000)
        assert await log.locator(".msg").all_inner_texts() == before
        await expect(log.get_by_text(first, exact=True)).to_have_count(1)

        second = "Danke! Kann ich auch samstags kommen?"
        await send(page, second)
        texts = await wait_for_text(anna, room_id, second)
        assert texts.count(second) == 1 and texts.count(first) == 1
        await expect(log.get_by_text(second, exact=True)).to_have_count(1)
        await expect(log.get_by_text("wird gesendet…")).to_have_count(0, timeout=60_000)
        assert len(await log.locator(".msg").all()) == len(before) + 1

        # A web address from staff is a safe link; a script address is text.
        links = (
            "Das Formular: https://www.musterstadt.example/formulare/antrag.pdf. "
            "Nicht: javascript:alert(1) oder data:text/html,hallo"
        )
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": links}
        )
        message = log.locator(".msg.staff", has_text="Das Formular")
        await expect(message).to_have_text(re.compile(re.escape(links)))
        link = message.get_by_role("link")
        await expect(link).to_have_count(1)
        await expect(link).to_have_attribute(
            "href", "https://www.musterstadt.example/formulare/antrag.pdf"
        )
        await expect(link).to_have_attribute("target", "_blank")
        await expect(link).to_have_attribute("rel", "noopener noreferrer")
    finally:
        await anna.close()


async def test_message_sent_offline_arrives_once_when_back_online(
    stack: Stack, page: Page
) -> None:
    """Offline the widget says so and keeps the message; back online it arrives once."""
    await start_chat(page, stack, "Otto Offline")
    log = page.get_by_role("log")
    await page.context.set_offline(True)
    text = "Diese Nachricht schreibe ich im Funkloch."
    await send(page, text)
    bubble = log.locator(".msg", has_text=text)
    await expect(bubble).to_contain_text("wird gesendet…")
    await expect(
        page.get_by_text("Verbindung unterbrochen – wird erneut versucht")
    ).to_be_visible(timeout=60_000)
    assert [m["body"] for m in (await stored(page, stack))["outbox"]] == [text]

    await page.context.set_offline(False)
    await expect(
        page.get_by_text("Verbindung unterbrochen – wird erneut versucht")
    ).to_be_hidden(timeout=45_000)
    await expect(bubble).not_to_contain_text("wird gesendet…", timeout=45_000)
    await expect(log.get_by_text(text, exact=True)).to_have_count(1)
    assert (await stored(page, stack))["outbox"] == []


async def test_invalid_token_forgets_the_case_and_offers_a_new_chat(
    stack: Stack, page: Page
) -> None:
    """A token the bridge rejects (401) makes the widget drop the case and say why."""
    await start_chat(page, stack, "Vera Verfall")
    assert (await stored(page, stack))["token"]
    # Swap the token as the page loads, before the widget reads it: the running
    # widget saves its state on every event and could write the old token back
    # between a swap and the reload.
    swap = """key => {
        const state = JSON.parse(localStorage.getItem(key));
        if (state) {
            state.token = "no-longer-valid";
            localStorage.setItem(key, JSON.stringify(state));
        }
    }"""
    await page.add_init_script(f"({swap})({json.dumps(storage_key(stack))})")
    await page.reload()
    await expect(
        page.get_by_text(re.compile("abgelaufen oder nicht mehr gültig"))
    ).to_be_visible(timeout=60_000)
    await expect(page.get_by_role("button", name="Chat starten")).to_be_visible()
    assert "case_id" not in await stored(page, stack)


async def test_widget_lives_in_a_shadow_root_isolated_from_page_css(
    stack: Stack, browser: Browser
) -> None:
    """Page CSS does not reach into the widget, and the widget's CSS stays inside.
    (The hostile CSS is injected inline, which /demo's own CSP forbids: this
    test alone lets the browser ignore the CSP.)"""
    context = await new_context(browser)
    try:
        await _isolated_from_page_css(stack, await context.new_page())
    finally:
        await context.close()


async def _isolated_from_page_css(stack: Stack, page: Page) -> None:
    await page.goto(stack.bridge_url + "/demo")
    await page.add_style_tag(
        content="* { color: rgb(255, 0, 0) !important;"
        " font-family: monospace !important; }"
        " .launcher, .panel, buergerchat-widget { display: none !important; }"
    )
    await page.evaluate(
        "document.body.insertAdjacentHTML('beforeend',"
        " '<div id=lookalike class=\"panel launcher\">page content</div>')"
    )
    await page.get_by_role("button", name="Bürgerchat öffnen").click()
    await expect(page.get_by_role("button", name="Chat starten")).to_be_visible()

    seen = await page.evaluate(
        """() => {
        const host = document.querySelector('buergerchat-widget');
        const root = host.shadowRoot;
        const style = el => getComputedStyle(el);
        const lookalike = style(document.getElementById('lookalike'));
        return {
          inLightDom: document.querySelectorAll('[role=dialog], .bc').length,
          inShadow: root.querySelectorAll('[role=dialog]').length,
          titleColor: style(root.querySelector('h2')).color,
          introColor: style(root.querySelector('.intro')).color,
          introFont: style(root.querySelector('.intro')).fontFamily,
          launcherColor: style(root.querySelector('.launcher')).color,
          lookalikePosition: lookalike.position,
          lookalikeRadius: lookalike.borderTopLeftRadius,
        };
    }"""
    )
    assert seen["inLightDom"] == 0 and seen["inShadow"] == 1, seen
    red = "rgb(255, 0, 0)"
    colors = (seen["titleColor"], seen["introColor"], seen["launcherColor"])
    assert red not in colors, seen
    assert "monospace" not in seen["introFont"], seen
    assert seen["lookalikePosition"] == "static", seen
    assert seen["lookalikeRadius"] == "0px", seen


@pytest.fixture
async def town_site(stack: Stack) -> AsyncIterator[str]:
    """The town's own website on another origin, embedding the chat with one tag."""
    html = (
        "<!doctype html><html lang=de><head><meta charset=utf-8></head><body>"
        "<h1>Musterstadt</h1>"
        f'<script src="{stack.bridge_url}/widget/widget.js" data-lang="en" async>'
        "</script></body></html>"
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_one_tag_on_another_site_in_english_with_keyboard(
    town_site: str, page: Page
) -> None:
    """Embedded cross-origin with data-lang=en, usable by keyboard, no randomUUID."""
    # Browsers lack crypto.randomUUID outside secure contexts: take the fallback.
    await page.add_init_script("delete Crypto.prototype.randomUUID")
    await page.goto(town_site)
    launcher = page.get_by_role("button", name="Open citizen chat")
    await launcher.focus()
    await page.keyboard.press("Enter")
    department = page.get_by_role("radio", name=re.compile("Bürgerbüro"))
    await expect(department).to_be_focused()
    await expect(department).to_have_accessible_name(re.compile("Live now until 12:00"))
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()
    await expect(launcher).to_be_focused()

    await page.keyboard.press("Enter")
    await department.check()
    await page.get_by_role("checkbox", name=re.compile("privacy notice")).check()
    await page.get_by_role("button", name="Start chat").press("Enter")
    box = page.get_by_role("textbox", name="Your message")
    await expect(box).to_be_focused(timeout=60_000)
    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    await page.keyboard.press("Enter")
    log = page.get_by_role("log")
    bubble = log.locator(".msg.citizen")
    await expect(bubble).to_have_count(1)
    assert await bubble.locator(".text").inner_text() == "first line\nsecond line"
    await expect(log.get_by_text("sending…")).to_have_count(0, timeout=60_000)
    await expect(box).to_have_value("")


async def test_staff_closing_the_case_ends_the_chat_and_offers_a_new_one(
    stack: Stack, page: Page
) -> None:
    """After !close the widget says the case is closed, stops input, can start anew."""
    reference = await start_chat(page, stack, "Clara Closed")
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!close erledigt"}
        )
    finally:
        await anna.close()
    await expect(page.get_by_text("Dieses Anliegen ist abgeschlossen.")).to_be_visible(
        timeout=60_000
    )
    await expect(page.get_by_role("textbox", name="Ihre Nachricht")).to_be_disabled()
    await page.get_by_role("button", name="Neues Anliegen").click()
    await expect(page.get_by_role("button", name="Chat starten")).to_be_visible()
    assert "case_id" not in await stored(page, stack)
