"""Video and phone calls from the citizen widget, in Chromium against the real stack.

Jitsi itself is not needed: ``video.jitsi_domain`` points at a small HTTPS server in
the test that serves a fake ``external_api.js``. The fake records what the widget
passes to ``new JitsiMeetExternalAPI(domain, options)`` on ``window``, so the test
can compare room, token and display name with what the bridge hands out."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from icalendar import Calendar
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.unit.mail.smtp_server import self_signed_tls

from .a11y import assert_accessible, new_context
from .conftest import ANNA, staff_client
from .stack import Stack, free_port, make_stack, shared_rules
from .test_offline import Smtp, smtp, smtp_mail  # noqa: F401 (fixture)
from .test_widget import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REFERENCE,
    join_case_room,
    start_chat,
    stored,
)

pytestmark = pytest.mark.e2e

SECRET = "widget-test-secret-0123456789-abcdefghij"
APP_ID = "buergerchat-test"
HELPLINE = "07205 123-456"  # config/buergerchat.yaml video.helpline
FAKE_API = """
window.JitsiMeetExternalAPI = function (domain, options) {
  var seen = {
    domain: domain, roomName: options.roomName, jwt: options.jwt || null,
    displayName: options.userInfo && options.userInfo.displayName,
    startWithVideoMuted: options.configOverwrite.startWithVideoMuted,
    inShadowRoot: options.parentNode.getRootNode() instanceof ShadowRoot
  };
  (window.fakeJitsi = window.fakeJitsi || []).push(seen);
  this.frame = document.createElement("iframe");
  this.frame.title = "Fake Jitsi " + options.roomName;
  this.frame.srcdoc = "<p>conference " + options.roomName + "</p>";
  options.parentNode.appendChild(this.frame);
  this.listeners = {};
};
window.JitsiMeetExternalAPI.prototype.addListener = function (name, fn) {
  this.listeners[name] = fn;
};
window.JitsiMeetExternalAPI.prototype.dispose = function () {
  this.frame.remove();
  window.fakeJitsiDisposed = (window.fakeJitsiDisposed || 0) + 1;
};
"""


@dataclass
class FakeJitsi:
    domain: str
    requests: list[str] = field(default_factory=list)
    broken: bool = False  # external_api.js answers 503


@pytest.fixture(scope="module")
async def fake_jitsi(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FakeJitsi]:
    """A stand-in for the town's Jitsi on https://localhost:<port>."""
    port = free_port()
    fake = FakeJitsi(domain=f"localhost:{port}")

    async def any_path(request: web.Request) -> web.Response:
        fake.requests.append(request.path_qs)
        if request.path == "/external_api.js":
            if fake.broken:
                return web.Response(status=503, text="maintenance")
            return web.Response(text=FAKE_API, content_type="application/javascript")
        return web.Response(text="<p>Jitsi Meet (fake)</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", any_path)
    runner = web.AppRunner(app)
    await runner.setup()
    context, _ = self_signed_tls(tmp_path_factory.mktemp("jitsi-tls"))
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield fake
    finally:
        await runner.cleanup()


#: Thursday 14:13:30 in Berlin: the Bürgerbüro's chat and video hours
#: (14:00-18:00), and a 14:15 appointment whose reminder (a minute before) and
#: no-show (a minute after) come within the module's run.
VIDEO_HOURS_NOW = "2026-11-19T14:13:30+01:00"
#: The office's timers shortened so that they fire while the module runs; the
#: waiting room opens half an hour before, so the 14:30 appointment's is open.
QUICK_BOOKING = {
    "reminders_minutes": [1],
    "no_show_minutes": 1,
    "waiting_room_opens_minutes": 30,
    # the walk-in finds Anna free after the 14:15 and 14:30 appointments
    "walk_in_within_minutes": 60,
}
MISSED = "nicht.gekommen@example.org"


def video_office_rules(data: dict[str, Any]) -> None:
    """The shared rules, and Bürgerbüro appointments bookable up to their start
    (no cut-off)."""
    shared_rules(data)
    for department in data["departments"]:
        if department["id"] == "buergerbuero":
            department["video"]["cutoff_minutes"] = 0


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_jitsi: FakeJitsi,
    smtp: Smtp,  # noqa: F811
) -> Iterator[Stack]:
    """The product with Jitsi token authentication against the fake Jitsi, mailing
    through a real SMTP server, on a Thursday during the video hours."""
    base = tmp_path_factory.mktemp("stack-video")
    s = make_stack(
        base,
        edit_rules=video_office_rules,
        video={
            "jitsi_domain": fake_jitsi.domain,
            "jitsi_app_id": APP_ID,
            "jitsi_app_secret_file": "jitsi-secret.txt",
        },
        mail=smtp_mail(smtp),
        booking=QUICK_BOOKING,
    )
    s.extra_env["BUERGERCHAT_NOW"] = VIDEO_HOURS_NOW
    (s.config_dir / "jitsi-secret.txt").write_text(SECRET + "\n")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module", autouse=True)
async def missed_appointment(stack: Stack) -> dict[str, Any]:
    """Booked as the module starts, for 14:15, by someone who never comes: its
    reminder and no-show arrive while the other tests run (checked last)."""
    body = {
        "department": "buergerbuero",
        "services": ["meldebescheinigung"],
        "start": "2026-11-19T14:15:00+01:00",
        "name": "Nils Nichtda",
        "email": MISSED,
        "consent": True,
        "client_id": "missed-e2e",
    }
    async with aiohttp.ClientSession() as http:
        url = stack.bridge_url + "/api/v1/appointments"
        async with http.post(url, json=body) as resp:
            answer = await resp.json()
            assert resp.status == 201, answer
    return dict(answer)


async def launch(extra: list[str]) -> tuple[object, Browser]:
    p = await async_playwright().start()
    browser = await p.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + extra, headless=True
    )
    return p, browser


@pytest.fixture(scope="module")
async def cameras_allowed() -> AsyncIterator[Browser]:
    """Chromium with a fake camera and microphone whose permission is granted."""
    p, browser = await launch(
        ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    )
    try:
        yield browser
    finally:
        await browser.close()
        await p.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
async def cameras_denied() -> AsyncIterator[Browser]:
    """Chromium with fake devices whose permission prompt is always refused."""
    p, browser = await launch(
        ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
    )
    try:
        yield browser
    finally:
        await browser.close()
        await p.stop()  # type: ignore[attr-defined]


async def new_page(browser: Browser, width: int = 1280) -> Page:
    context = await new_context(
        browser, viewport={"width": width, "height": 800}, ignore_https_errors=True
    )
    return await context.new_page()


async def staff_in_room(stack: Stack, reference: str) -> tuple[object, str]:
    anna = await staff_client(stack, ANNA)
    return anna, await join_case_room(anna, reference)


async def say(anna: object, room_id: str, body: str) -> None:
    await anna.room_send(  # type: ignore[attr-defined]
        room_id, "m.room.message", {"msgtype": "m.text", "body": body}
    )


def claims(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], audience="jitsi")


async def test_join_button_embeds_the_conference_with_room_token_and_name(
    stack: Stack, fake_jitsi: FakeJitsi, cameras_allowed: Browser
) -> None:
    """After !video the citizen sees "Videoberatung beitreten"; joining loads
    external_api.js from the configured Jitsi and passes the case's conference, a
    token for exactly that room and the name the citizen gave; !video end removes
    button and conference."""
    page = await new_page(cameras_allowed)
    reference = await start_chat(page, stack, "Erika Video")
    anna, room_id = await staff_in_room(stack, reference)
    try:
        await say(anna, room_id, "!video")
        join = page.get_by_role("button", name="Videoberatung beitreten")
        await expect(join).to_be_visible(timeout=60_000)
        await assert_accessible(page, "video offered")
        fake_jitsi.requests.clear()
        await join.click()
        frame = page.locator("iframe[title^='Fake Jitsi']")
        await expect(frame).to_be_visible(timeout=60_000)
        await assert_accessible(page, "video joined", phone=False)

        seen = await page.evaluate("window.fakeJitsi")
        assert len(seen) == 1, seen
        seen = seen[0]
        assert "/external_api.js" in fake_jitsi.requests
        assert seen["domain"] == fake_jitsi.domain
        assert seen["displayName"] == "Erika Video"
        assert seen["startWithVideoMuted"] is False
        assert seen["inShadowRoot"] is True
        case = await stored(page, stack)
        info = await page.evaluate(
            """([url, token]) => fetch(url,
                {headers: {Authorization: 'Bearer ' + token}}).then(r => r.json())""",
            [f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/video", case["token"]],
        )
        assert seen["roomName"] == info["room"]
        passed = claims(seen["jwt"])
        assert passed["room"] == info["room"]
        assert passed["iss"] == APP_ID
        assert passed["context"]["user"]["name"] == "Erika Video"

        await say(anna, room_id, "!video end")
        await expect(join).to_have_count(0, timeout=60_000)
        await expect(frame).to_have_count(0)
        assert await page.evaluate("window.fakeJitsiDisposed") == 1
        await expect(page.get_by_role("log")).to_contain_text(
            "Die Videoberatung wurde von Anna Schmidt beendet."
        )
    finally:
        await anna.close()  # type: ignore[attr-defined]
        await page.context.close()


async def test_refused_camera_explains_how_to_allow_it_and_shows_the_helpline(
    stack: Stack, fake_jitsi: FakeJitsi, cameras_denied: Browser
) -> None:
    """With camera/microphone refused the widget says how to allow them and names
    the helpline; no conference is loaded; !video end removes the button."""
    page = await new_page(cameras_denied)
    reference = await start_chat(page, stack, "Dora Denied")
    anna, room_id = await staff_in_room(stack, reference)
    try:
        await say(anna, room_id, "!video")
        join = page.get_by_role("button", name="Videoberatung beitreten")
        await expect(join).to_be_visible(timeout=60_000)
        fake_jitsi.requests.clear()
        await join.click()
        message = page.get_by_text(
            "hat den Zugriff auf Kamera und Mikrofon nicht erlaubt"
        )
        await expect(message).to_be_visible(timeout=60_000)
        await expect(message).to_contain_text("„Zulassen“")
        helpline = page.get_by_role("link", name=HELPLINE)
        await expect(helpline).to_be_visible()
        assert await helpline.get_attribute("href") == "tel:07205123456"
        assert await page.evaluate("window.fakeJitsi === undefined")
        assert "/external_api.js" not in fake_jitsi.requests
        await expect(join).to_be_enabled()  # the citizen may try again after allowing

        await say(anna, room_id, "!video end")
        await expect(join).to_have_count(0, timeout=60_000)
    finally:
        await anna.close()  # type: ignore[attr-defined]
        await page.context.close()


async def test_phone_call_starts_muted_and_a_broken_jitsi_shows_the_helpline(
    stack: Stack, fake_jitsi: FakeJitsi, cameras_allowed: Browser
) -> None:
    """!audio offers "Telefonat beitreten"; when external_api.js cannot be loaded the
    citizen reads that and gets the helpline; once Jitsi is back, joining works
    with the camera off."""
    page = await new_page(cameras_allowed)
    reference = await start_chat(page, stack, "Paul Phone")
    anna, room_id = await staff_in_room(stack, reference)
    try:
        await say(anna, room_id, "!audio")
        join = page.get_by_role("button", name="Telefonat beitreten")
        await expect(join).to_be_visible(timeout=60_000)
        fake_jitsi.broken = True
        await join.click()
        await expect(
            page.get_by_text("Die Videoberatung konnte nicht geladen werden.")
        ).to_be_visible(timeout=30_000)
        await expect(page.get_by_role("link", name=HELPLINE)).to_be_visible()

        fake_jitsi.broken = False
        await page.get_by_role("button", name="Telefonat beitreten").click()
        await expect(page.locator("iframe[title^='Fake Jitsi']")).to_be_visible(
            timeout=60_000
        )
        seen = (await page.evaluate("window.fakeJitsi"))[0]
        assert seen["startWithVideoMuted"] is True
        assert seen["displayName"] == "Paul Phone"
    finally:
        await say(anna, room_id, "!audio end")
        await anna.close()  # type: ignore[attr-defined]
        await page.context.close()


async def test_small_screen_opens_the_conference_in_a_new_tab(
    stack: Stack, fake_jitsi: FakeJitsi, cameras_allowed: Browser
) -> None:
    """Below 600 px the call opens as https://<domain>/<room>?jwt=… in its own tab."""
    page = await new_page(cameras_allowed, width=420)
    reference = await start_chat(page, stack, "Mia Mobil")
    anna, room_id = await staff_in_room(stack, reference)
    try:
        await say(anna, room_id, "!video")
        join = page.get_by_role("button", name="Videoberatung beitreten")
        await expect(join).to_be_visible(timeout=60_000)
        async with page.context.expect_page() as popup:
            await join.click()
        tab = await popup.value
        await tab.wait_for_load_state()
        assert tab.url.startswith(f"https://{fake_jitsi.domain}/")
        room, _, query = tab.url.removeprefix(
            f"https://{fake_jitsi.domain}/"
        ).partition("?jwt=")
        assert claims(query)["room"] == room
        assert claims(query)["context"]["user"]["name"] == "Mia Mobil"
        await expect(page.get_by_text("in einem neuen Tab geöffnet")).to_be_visible()
        assert await page.evaluate("window.fakeJitsi === undefined")
    finally:
        await say(anna, room_id, "!video end")
        await anna.close()  # type: ignore[attr-defined]
        await page.context.close()


# --- the virtual citizen office: book, mail, link, waiting room, !next ----------


async def mail_to(server: Smtp, address: str, subject: str, within: float = 60) -> Any:
    """The first mail to ``address`` whose subject has ``subject``, as it arrived
    at the SMTP server."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        for received in server.received:
            message = received.message
            if address in received.rcpt_tos and subject in str(message["Subject"]):
                return message
        await asyncio.sleep(0.5)
    raise AssertionError(f"no mail '{subject}' to {address}")


async def notice_bodies(
    client: Any, room_id: str, wanted: str, within: float = 30
) -> list[str]:
    """The bot's notices in the room, once one has ``wanted``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.room_messages(room_id, limit=100)
        found = [
            e.source["content"].get("body", "")
            for e in response.chunk
            if e.source.get("content", {}).get("msgtype") == "m.notice"
        ]
        if any(wanted in f for f in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


def ics_of(message: Any) -> Any:
    part = next(
        p for p in message.iter_attachments() if p.get_filename() == "termin.ics"
    )
    return Calendar.from_ical(part.get_content())


async def book_in_widget(
    page: Page, stack: Stack, name: str, email: str, at: str = "14:30"
) -> None:
    """Start view → "Videotermin buchen" → Bürgerbüro, Meldebescheinigung, the
    time ``at`` → name, e-mail, consent → booked."""
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").click()
    await page.get_by_role("button", name="Videotermin buchen").click()
    await page.get_by_role("radio", name="Bürgerbüro").check()
    await page.get_by_role("checkbox", name=re.compile("Meldebescheinigung")).check()
    await fill_booking(page, name, email, at)


async def fill_booking(page: Page, name: str, email: str, at: str) -> None:
    slot = page.get_by_role("button", name=f"Donnerstag, 19.11., {at} Uhr")
    await expect(slot).to_be_visible(timeout=30_000)
    if at == "14:30":
        await assert_accessible(page, "booking: free times")
    await slot.click()
    await page.get_by_label("Ihr Name", exact=True).fill(name)
    await page.get_by_label(re.compile("^E-Mail")).fill(email)
    await page.get_by_role(
        "checkbox", name=re.compile("Datenschutz|einverstanden|stimme")
    ).check()
    await page.get_by_role("button", name="Termin verbindlich buchen").click()


async def test_book_mail_link_waiting_room_next_and_the_call(
    stack: Stack,
    fake_jitsi: FakeJitsi,
    smtp: Smtp,  # noqa: F811
    cameras_allowed: Browser,
) -> None:
    """The issue's whole path: book in the widget → the confirmation mail at the
    SMTP server with the .ics and the personal link → the link opened on another
    device → the waiting room (device check, "you are next") → Anna types !next
    in the case room → the citizen is in the call: the fake Jitsi gets the
    case's conference and a token for exactly it that passes the lobby."""
    booker = await new_page(cameras_allowed)
    visitor = await new_page(cameras_allowed)
    anna = None
    try:
        await book_in_widget(booker, stack, "Erika Termin", "erika.termin@example.org")
        box = booker.get_by_role("region", name="Ihr Videotermin")
        await expect(box).to_contain_text("14:30", timeout=60_000)
        reference = REFERENCE.search(
            await booker.get_by_text(re.compile("Vorgang BC-")).inner_text()
        )
        assert reference
        mail = await mail_to(smtp, "erika.termin@example.org", "Ihr Videotermin")
        text = str(mail.get_body(("plain",)).get_content())
        assert "19.11.2026, 14:30 Uhr" in text and "Ihren Personalausweis" in text
        event = ics_of(mail).walk("VEVENT")[0]
        assert event.decoded("dtstart") == datetime(2026, 11, 19, 13, 30, tzinfo=UTC)
        link = next(w for w in text.split() if "#bc-resume=" in w)
        assert link.startswith(stack.bridge_url)

        # Another device opens the personal link: the appointment, the waiting room.
        await visitor.goto(link)
        enter = visitor.get_by_role("button", name="Warteraum betreten")
        await expect(enter).to_be_visible(timeout=60_000)
        await enter.click()
        await expect(visitor.get_by_text("Sie sind als Nächstes dran")).to_be_visible(
            timeout=30_000
        )
        await expect(
            visitor.get_by_text("Kamera und Mikrofon funktionieren")
        ).to_be_visible(timeout=30_000)
        await assert_accessible(visitor, "waiting room")

        anna = await staff_client(stack, ANNA)
        room_id = await join_case_room(anna, reference.group(0))
        fake_jitsi.requests.clear()
        await say(anna, room_id, "!next")
        await expect(visitor.get_by_role("log")).to_contain_text(
            "Anna Schmidt holt Sie jetzt in das Videogespräch", timeout=60_000
        )
        frame = visitor.locator("iframe[title^='Fake Jitsi']")
        await expect(frame).to_be_visible(timeout=60_000)
        seen = (await visitor.evaluate("window.fakeJitsi"))[0]
        passed = claims(seen["jwt"])
        assert passed["room"] == seen["roomName"]
        assert passed["context"]["user"]["lobby_bypass"] is True
        assert passed["context"]["user"]["name"] == "Erika Termin"
        # Anna read whom she called, and got a moderator link for that conference.
        notices = await notice_bodies(anna, room_id, "Moderator")
        assert any("ist jetzt mit Ihnen im Videogespräch" in n for n in notices)
        moderator = next(n for n in notices if "Moderator" in n)
        assert claims(moderator.split("jwt=")[1].split()[0])["room"] == passed["room"]
    finally:
        if anna is not None:
            await anna.close()
        await booker.context.close()
        await visitor.context.close()


async def test_parallel_bookings_cancel_and_walk_in_through_the_bridge(
    stack: Stack,
    smtp: Smtp,  # noqa: F811
) -> None:
    """Twenty bookings of one time at once through the real bridge: one wins.
    Cancelling frees the time and mails an .ics that removes the entry. A walk-in
    during the video hours waits in the waiting room with its place."""
    url = stack.bridge_url + "/api/v1/appointments"

    def body(n: int, start: str = "2026-11-19T16:00:00+01:00") -> dict[str, Any]:
        return {
            "department": "buergerbuero",
            "services": ["personalausweis"],
            "start": start,
            "name": f"Person {n}",
            "email": f"p{n}@example.org",
            "consent": True,
            "client_id": f"parallel-{n}",
        }

    async with aiohttp.ClientSession() as http:

        async def post(n: int) -> tuple[int, dict[str, Any]]:
            async with http.post(url, json=body(n)) as resp:
                return resp.status, await resp.json()

        answers = await asyncio.gather(*(post(n) for n in range(20)))
        assert sorted(status for status, _ in answers) == [201] + [409] * 19
        won = next(answer for status, answer in answers if status == 201)
        assert {a["errcode"] for s, a in answers if s == 409} == {"BC_SLOT_TAKEN"}

        auth = {"Authorization": f"Bearer {won['token']}"}
        async with http.delete(f"{url}/{won['appointment_id']}", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
        cancelled = await mail_to(smtp, won_address(answers), "Abgesagt")
        assert str(ics_of(cancelled)["method"]) == "CANCEL"
        async with http.post(url, json=body(99)) as resp:
            assert resp.status == 201  # the time is free again

        offer = stack.bridge_url + "/api/v1/walk-ins"
        query = "?department=standesamt&services=geburtsurkunde"
        async with http.get(offer + query) as resp:
            chance = await resp.json()
        assert chance["available"] is False  # Standesamt: video 10:00-12:00 only
        walk = dict(body(7), department="buergerbuero", services=["meldebescheinigung"])
        del walk["start"]
        walk["client_id"] = "walk-in-e2e"
        async with http.post(offer, json=walk) as resp:
            walked = await resp.json()
            assert resp.status == 201, walked
        assert walked["state"] == "waiting" and walked["waiting"]["position"] >= 1


def won_address(answers: list[tuple[int, dict[str, Any]]]) -> str:
    """The e-mail of the one booking that won (its client id names it)."""
    return next(
        f"p{n}@example.org" for n, (status, _) in enumerate(answers) if status == 201
    )


async def test_choosing_another_time_books_it_then_cancels_the_first(
    stack: Stack,
    smtp: Smtp,  # noqa: F811
    cameras_allowed: Browser,
) -> None:
    page = await new_page(cameras_allowed)
    try:
        await book_in_widget(page, stack, "Rudi Umbucher", "rudi@example.org", "15:30")
        box = page.get_by_role("region", name="Ihr Videotermin")
        await expect(box).to_contain_text("15:30", timeout=60_000)
        await page.get_by_role("button", name="Anderen Termin wählen").click()
        # The same services are chosen already; another time, the same person.
        await fill_booking(page, "Rudi Umbucher", "rudi@example.org", "16:30")
        await expect(box).to_contain_text("16:30", timeout=60_000)
        cancelled = await mail_to(smtp, "rudi@example.org", "Abgesagt")
        assert "15:30" in str(cancelled["Subject"])
        booked = [
            r.message
            for r in smtp.received
            if "rudi@example.org" in r.rcpt_tos
            and "] Ihr Videotermin am" in str(r.message["Subject"])
        ]
        assert len(booked) == 2
    finally:
        await page.context.close()


async def test_walk_in_from_the_widget_waits_with_its_place(
    stack: Stack, cameras_allowed: Browser
) -> None:
    """During the video hours the booking view offers the walk-in: name and
    consent (no e-mail needed) → the waiting room at once, with the place, the
    expected start and the device check."""
    page = await new_page(cameras_allowed)
    try:
        await page.goto(stack.bridge_url + "/demo")
        await page.get_by_role("button", name="Bürgerchat öffnen").click()
        await page.get_by_role("button", name="Videotermin buchen").click()
        await page.get_by_role("radio", name="Bürgerbüro").check()
        await page.get_by_role(
            "checkbox", name=re.compile("Meldebescheinigung")
        ).check()
        walk_in = page.get_by_role(
            "button", name=re.compile("Jetzt ohne Termin ins Videogespräch")
        )
        await expect(walk_in).to_be_visible(timeout=30_000)
        await walk_in.click()
        await page.get_by_label("Ihr Name", exact=True).fill("Wanda Spontan")
        await page.get_by_role("checkbox", name=re.compile("einverstanden")).check()
        await page.get_by_role("button", name="In den Warteraum").click()
        box = page.get_by_role("region", name="Ihr Videotermin")
        place = box.get_by_text(re.compile("Sie sind (an Position|als Nächstes)"))
        await expect(place).to_be_visible(timeout=60_000)
        await expect(
            page.get_by_text("Kamera und Mikrofon funktionieren")
        ).to_be_visible(timeout=30_000)
        case = await stored(page, stack)
        async with aiohttp.ClientSession() as http:
            url = f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/appointment"
            auth = {"Authorization": f"Bearer {case['token']}"}
            async with http.get(url, headers=auth) as resp:
                shown = await resp.json()
        assert shown["walk_in"] is True and shown["state"] == "waiting"
        assert shown["waiting"]["position"] >= 1
    finally:
        await page.context.close()


async def test_the_reminder_and_the_no_show_arrive_at_their_times(
    stack: Stack,
    smtp: Smtp,  # noqa: F811
    missed_appointment: dict[str, Any],
) -> None:
    """The 14:15 appointment booked at the module's start (town clock 14:13:30):
    the reminder a minute before at the SMTP server with the personal link, then
    a minute after the start the no-show: its mail, the case closed, the time
    free again (runs last; its wait overlaps the other tests)."""
    reminder = await mail_to(smtp, MISSED, "Erinnerung", within=180)
    assert "#bc-resume=" in str(reminder.get_body(("plain",)).get_content())
    missed = await mail_to(smtp, MISSED, "Verpasst", within=240)
    assert "14:15" in str(missed["Subject"])
    async with aiohttp.ClientSession() as http:
        url = f"{stack.bridge_url}/api/v1/cases/{missed_appointment['case_id']}"
        auth = {"Authorization": f"Bearer {missed_appointment['token']}"}
        async with http.get(url, headers=auth) as resp:
            assert (await resp.json())["state"] == "closed"
        async with http.get(url + "/appointment", headers=auth) as resp:
            assert (await resp.json())["state"] == "no_show"
