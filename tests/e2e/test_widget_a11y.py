"""The widget by keyboard, screen reader, zoom, motion and contrast settings, and
in the citizen's language (BITV 2.0 / WCAG 2.1 AA; axe-core runs in every
browser test besides, see tests/e2e/a11y.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from nio import RoomMessageNotice, RoomMessagesResponse
from playwright.async_api import Browser, Page, expect

from bridge.i18n import direction, say, text

from .a11y import assert_accessible, new_context
from .conftest import ANNA, staff_client
from .stack import Stack
from .test_widget import browser, join_case_room, send, wait_for_text  # noqa: F401

pytestmark = pytest.mark.e2e
HELLO = "Merhaba, pasaportum için randevu istiyorum."


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811
    context = await new_context(browser)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def focused(page: Page) -> str:
    """What has the keyboard focus inside the widget: tag#id or its name."""
    return str(
        await page.evaluate(
            """() => {
              const host = document.querySelector('buergerchat-widget');
              const el = host && host.shadowRoot.activeElement;
              if (!el) return document.activeElement === host ? 'host' : 'page';
              const name = el.getAttribute('aria-label') || el.textContent || '';
              return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ':' +
                name.trim().slice(0, 40);
            }"""
        )
    )


async def open_panel(page: Page, stack: Stack) -> None:
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("radio").first).to_be_focused()


async def test_the_open_panel_is_a_dialog_that_keeps_the_focus(
    stack: Stack, page: Page
) -> None:
    """Tab and Shift+Tab cycle inside the panel (never into the page behind);
    Escape closes it and the focus is back on the chat button."""
    await open_panel(page, stack)
    dialog = page.get_by_role("dialog", name="Bürgerchat")
    await expect(dialog).to_have_attribute("aria-modal", "true")
    seen = []
    for _ in range(30):
        await page.keyboard.press("Tab")
        where = await focused(page)
        assert where not in ("page", "host"), f"Tab left the panel after {seen}"
        seen.append(where)
    assert len(set(seen)) < len(seen), "Tab did not wrap around inside the panel"
    for _ in range(30):
        await page.keyboard.press("Shift+Tab")
        assert await focused(page) not in ("page", "host")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    launcher = page.get_by_role("button", name="Bürgerchat öffnen")
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")


async def test_every_control_is_named_and_errors_belong_to_their_field(
    stack: Stack, page: Page
) -> None:
    """The consent error is announced (role alert) and tied to the checkbox by
    aria-describedby; a missing department is tied to the group of radios."""
    await open_panel(page, stack)
    await page.get_by_role("button", name="Chat starten").click()
    group = page.locator("buergerchat-widget fieldset").first
    await expect(group).to_have_attribute("aria-describedby", "bc-start-error")
    await expect(page.get_by_role("alert")).to_have_text(
        "Bitte wählen Sie aus, womit wir helfen können."
    )
    await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await page.get_by_role("button", name="Chat starten").click()
    consent = page.get_by_role("checkbox")
    await expect(consent).to_be_focused()
    await expect(consent).to_have_attribute("aria-invalid", "true")
    await expect(consent).to_have_accessible_description(
        re.compile("Bitte stimmen Sie den Datenschutzhinweisen zu")
    )
    names = await page.evaluate(
        """() => [...document.querySelector('buergerchat-widget').shadowRoot
              .querySelectorAll('button, input, select, textarea, a[href]')]
              .filter(el => !el.closest('[hidden]'))
              .filter(el => el.getAttribute('aria-hidden') !== 'true')
              .filter(el => !(el.labels && el.labels.length))
              .filter(el => !el.getAttribute('aria-label') && !el.textContent.trim())
              .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert names == [], f"unnamed controls: {names}"


async def test_start_page_links_statement_and_leichte_sprache(
    stack: Stack, page: Page
) -> None:
    """BITV 2.0 §§ 4 and 7: the start page links the accessibility statement and
    the Leichte Sprache explanation (served by the bridge); no sign-language
    link while the town has no DGS video."""
    await open_panel(page, stack)
    panel = page.locator("#bc-panel")  # the demo page has its own footer links
    statement = panel.get_by_role("link", name="Barrierefreiheit")
    await expect(statement).to_have_attribute(
        "href", stack.bridge_url + "/accessibility"
    )
    easy = panel.get_by_role("link", name="Leichte Sprache")
    await expect(easy).to_have_attribute("href", stack.bridge_url + "/leichte-sprache")
    await expect(panel.get_by_role("link", name="Gebärdensprache")).to_have_count(0)
    async with page.context.expect_page() as opened:
        await easy.click()
    other = await opened.value
    await expect(other.get_by_role("heading", level=1)).to_have_text(
        "Der Bürger·chat in Leichter Sprache"
    )


async def test_new_messages_and_queue_changes_are_announced_politely(
    stack: Stack, page: Page
) -> None:
    """The timeline is a polite live log, so a staff answer is read out without
    moving the focus; the queue box and typing line are polite status regions."""
    await open_panel(page, stack)
    await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Chat starten").click()
    log = page.get_by_role("log", name="Chatverlauf")
    await expect(log).to_have_attribute("aria-live", "polite")
    queue = page.locator("buergerchat-widget .queue")
    await expect(queue).to_have_attribute("aria-live", "polite")
    await expect(queue).to_have_attribute("role", "status")
    reference = await page.evaluate(
        """() => document.querySelector('buergerchat-widget').shadowRoot
              .textContent.match(/BC-\\d{4}-\\d{6}/)[0]"""
    )
    textbox = page.get_by_role("textbox", name="Ihre Nachricht")
    await expect(textbox).to_be_focused()
    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Wie geht es?"}
        )
        await expect(log.get_by_text("Wie geht es?")).to_be_visible(timeout=60_000)
        await expect(textbox).to_be_focused()  # announced, not focused
    finally:
        await anna.close()


@pytest.mark.parametrize("width", [320, 640])
async def test_phone_width_and_200_percent_zoom_lose_nothing(
    stack: Stack,
    browser: Browser,  # noqa: F811
    width: int,
) -> None:
    """At 320 px (and 1280 px at 200 % zoom, which is 640 CSS px) the panel does
    not scroll sideways and every control of the start form can be reached."""
    context = await new_context(
        browser,
        viewport={"width": width, "height": 640},
        device_scale_factor=2 if width == 640 else 1,
    )
    page = await context.new_page()
    try:
        await open_panel(page, stack)
        overflow = await page.evaluate(
            """() => [...document.querySelector('buergerchat-widget').shadowRoot
                  .querySelectorAll('.panel, .panel *')]
                  .filter(el => el.scrollWidth > el.clientWidth + 1
                                && getComputedStyle(el).overflowX !== 'hidden'
                                && el.tagName !== 'SELECT')
                  .map(el => el.className || el.tagName)"""
        )
        assert overflow == [], f"scrolls sideways: {overflow}"
        panel = await page.locator("buergerchat-widget .panel").bounding_box()
        assert panel is not None and panel["width"] <= width
        start = page.get_by_role("button", name="Chat starten")
        await start.scroll_into_view_if_needed()
        await expect(start).to_be_in_viewport()
        await assert_accessible(page, f"picker at {width}px", phone=False)
    finally:
        await context.close()


STYLES = (
    "el => [getComputedStyle(el).transitionDuration,"
    " getComputedStyle(el).borderTopStyle]"
)


async def test_reduced_motion_and_forced_colours_are_honoured(
    stack: Stack, page: Page
) -> None:
    await page.emulate_media(reduced_motion="reduce", forced_colors="active")
    await open_panel(page, stack)
    launcher = page.locator("buergerchat-widget .launcher")
    styles = await launcher.evaluate(STYLES)
    assert styles == ["0s", "solid"], styles
    await page.emulate_media(reduced_motion="no-preference", forced_colors="none")
    styles = await launcher.evaluate(STYLES)
    assert styles[0] != "0s" and styles[1] == "none", styles


# --- languages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "code"),
    [
        ("tr-TR", "tr"),
        ("ar-SY", "ar"),
        ("uk-UA", "uk"),
        ("ru-RU", "ru"),
        ("fr-FR", "de"),
    ],
)
async def test_the_widget_starts_in_the_browsers_language(
    stack: Stack,
    browser: Browser,  # noqa: F811
    locale: str,
    code: str,
) -> None:
    """Each offered language by the browser's (French is not offered: German);
    Arabic is laid out right to left."""
    context = await new_context(browser, locale=locale)
    page = await context.new_page()
    try:
        await page.goto(stack.bridge_url + "/demo")
        root = page.locator("buergerchat-widget .bc")
        await expect(root).to_have_attribute("lang", code)
        await expect(root).to_have_attribute("dir", direction(code))
        launcher = page.get_by_role("button", name=text("widget.open", code))
        await launcher.click()
        await expect(page.get_by_role("radio").first).to_be_visible()
        await expect(
            page.get_by_role("dialog", name=text("widget.title", code))
        ).to_be_visible()
        if code == "ar":  # the close button sits at the left edge, the title right
            close = await page.get_by_role(
                "button", name=text("widget.close", code)
            ).bounding_box()
            title = await page.locator("buergerchat-widget #bc-title").bounding_box()
            assert close and title and close["x"] < title["x"]
        await assert_accessible(page, f"picker in {locale}")
    finally:
        await context.close()


async def test_the_language_travels_with_the_case(stack: Stack, page: Page) -> None:
    """Switched to Turkish in the panel: the switch names each language in itself,
    the system lines come in Turkish, and staff read "Sprache: Türkisch" in the
    team room's notice."""
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").click()
    switch = page.get_by_role("combobox", name="Sprache")
    options = await switch.locator("option").all_inner_texts()
    assert options == [
        "Deutsch",
        "English",
        "Türkçe",
        "العربية",
        "Українська",
        "Русский",
    ]
    await switch.select_option("tr")
    await expect(page.get_by_role("combobox", name="Dil")).to_have_value("tr")
    await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await page.get_by_role("checkbox").check()
    await page.locator("buergerchat-widget button[type=submit]").click()
    log = page.get_by_role("log")
    opened = say("opened", "tr", reference="BC-", department="Bürgerbüro")
    await expect(log).to_contain_text(opened.split("BC-")[0].strip(), timeout=60_000)
    reference = await page.evaluate(
        """() => document.querySelector('buergerchat-widget').shadowRoot
              .textContent.match(/BC-\\d{4}-\\d{6}/)[0]"""
    )
    await send(page, HELLO, text("widget.input", "tr"))

    anna = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await wait_for_text(
            anna, room_id, "Merhaba, pasaportum için randevu istiyorum."
        )
        joined = say("staff_joined", "tr", name="Anna Schmidt", department="X")
        await expect(log).to_contain_text(joined.split("(")[0].strip(), timeout=60_000)
        team = await team_notice(anna, reference)
        assert "Sprache: Türkisch" in team
    finally:
        await anna.close()


async def team_notice(anna: object, reference: str) -> str:
    """The Bürgerbüro team room's notice about ``reference``."""
    for _ in range(40):
        await anna.sync(timeout=1000)  # type: ignore[attr-defined]
        for room_id in list(anna.rooms):  # type: ignore[attr-defined]
            response = await anna.room_messages(room_id, limit=50)  # type: ignore[attr-defined]
            if not isinstance(response, RoomMessagesResponse):
                continue
            for event in response.chunk:
                if isinstance(event, RoomMessageNotice) and reference in event.body:
                    return str(event.body)
    raise AssertionError(f"no team notice names {reference}")
