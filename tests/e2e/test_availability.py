"""Who is really there, against the real Synapse with presence judged: staff who
never logged in do not count, the status follows a staff client that comes and
goes (within a minute), GET /status and POST /cases say the same, a fallback is
said before and after starting, and the widget (Chromium, phone and desktop
width) shows each state in words, with the demo page's hours from the status."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from nio import AsyncClient, TypingNoticeEvent
from playwright.async_api import Browser, Page, expect

from . import test_widget
from .a11y import new_context
from .conftest import ANNA, online, staff_client
from .stack import Stack, make_stack, shared_rules
from .test_live_chat import api, wait_for_event
from .test_widget import (
    join_case_room,
    send,
    shown_reference,
    wait_for_text,
)

pytestmark = pytest.mark.e2e
browser = test_widget.browser  # the module's Chromium (a fixture)

#: Synapse calls a client that stopped syncing offline after 30 s; with its
#: timers and the status kept 5 s, the status must follow within this.
FOLLOWS_WITHIN = 60.0


def presence_rules(data: dict[str, Any]) -> None:
    """The shipped rules, presence judged (as in production)."""
    shared_rules(data)
    data["routing"]["use_presence"] = True


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Thursday 10:00: Bürgerbüro, Bauen and Standesamt within their hours;
    Bauen's fallback is the Bürgerbüro. Nobody has logged in yet."""
    s = make_stack(tmp_path_factory.mktemp("town"), edit_rules=presence_rules)
    s.extra_env = {"BUERGERCHAT_NOW": "2026-11-19T10:00:00+01:00"}
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def statuses(stack: Stack) -> dict[str, dict[str, Any]]:
    status, body = await api(stack, "GET", "/api/v1/status")
    assert status == 200, body
    return {d["id"]: d for d in body["departments"]}


async def wait_state(stack: Stack, department: str, state: str) -> float:
    """Seconds until the status of ``department`` says ``state``."""
    began = time.monotonic()
    while time.monotonic() - began < FOLLOWS_WITHIN:
        now = (await statuses(stack))[department]["availability"]["state"]
        if now == state:
            return time.monotonic() - began
        await asyncio.sleep(1)
    raise AssertionError(f"{department} did not become {state} in {FOLLOWS_WITHIN}s")


async def start(
    stack: Stack, department: str, **extra: Any
) -> tuple[int, dict[str, Any]]:
    return await api(
        stack,
        "POST",
        "/api/v1/cases",
        json={"department": department, "consent": True, "name": "Eva", **extra},
    )


async def test_staff_who_never_logged_in_do_not_count(town: Stack) -> None:
    """Within the hours, with nobody ever logged in: no department is live, each
    says nobody_online, and a chat is refused with the same reason (no "next
    opening": it is open)."""
    known = await statuses(town)
    for department in ("buergerbuero", "bauen", "standesamt"):
        office = known[department]
        assert office["open"] and not office["live"], office
        assert office["availability"]["state"] == "nobody_online", office
    status, refused = await start(town, "standesamt")
    assert (status, refused["errcode"], refused["reason"]) == (
        409,
        "BC_OFFLINE",
        "nobody_online",
    )
    assert refused["next_opening"] is None


async def test_the_status_follows_staff_who_come_and_go(town: Stack) -> None:
    """Anna opens her client: the Bürgerbüro is available, Bauen (Bernd never
    logged in) is answered by the Bürgerbüro and says so, before and after
    starting. Anna's client goes away without a word: within a minute the
    status says nobody_online again, and a chat is refused alike."""
    async with online(town, ANNA):
        await wait_state(town, "buergerbuero", "available")
        bauen = (await statuses(town))["bauen"]
        assert bauen["live"] and bauen["availability"]["served_by"] == {
            "id": "buergerbuero",
            "name": "Bürgerbüro",
        }
        status, case = await start(town, "bauen", topic="bauantrag")
        assert status == 201, case
        status, info = await api(
            town, "GET", f"/api/v1/cases/{case['case_id']}", token=case["token"]
        )
        assert (info["topic"], info["topic_label"]) == (
            "bauantrag",
            "Bauantrag und Baugenehmigung",
        )
        assert (case["department"], case["requested_department"]) == (
            "buergerbuero",
            "bauen",
        )
        opened, _ = await wait_for_event(
            town, case, lambda e: e.get("kind") == "opened"
        )
        assert opened["body"].startswith(
            "Bauen und Wohnen ist gerade nicht besetzt – Bürgerbüro hilft Ihnen weiter."
        )
    took = await wait_state(town, "buergerbuero", "nobody_online")
    print(f"status followed Anna going away in {took:.0f} s")
    status, refused = await start(town, "buergerbuero")
    assert (status, refused["reason"]) == (409, "nobody_online")


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
async def test_the_widget_says_each_state_and_offers_a_message_instead(
    town: Stack, browser: Browser, width: int, height: int
) -> None:
    """Nobody online: the picker says so for the Bürgerbüro (within its hours, no
    "next opening") and offers a message. Anna online: the Bürgerbüro is live;
    the Standesamt and Bauen (nobody of theirs online) are answered by the
    Bürgerbüro and say so, with a button to write to Bauen instead, which opens
    Bauen's form. The demo page's hours are the configured ones."""
    context = await new_context(browser, viewport={"width": width, "height": height})
    page = await context.new_page()
    office = page.locator("label.dept", has_text="Bürgerbüro").first
    try:
        await wait_state(town, "buergerbuero", "nobody_online")
        await page.goto(town.bridge_url + "/demo")
        hours = page.locator("#bc-hours li")
        await expect(hours.first).to_contain_text("Bürgerbüro")
        await expect(hours.first).to_contain_text("Di 08:00–12:00, 14:00–16:00")
        await page.get_by_role("button", name="Bürgerchat öffnen").click()
        await expect(office).to_contain_text(
            "Sprechzeit, aber gerade niemand erreichbar"
        )
        await expect(office).not_to_contain_text("Nächste Sprechzeit")
        await page.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
        await expect(
            page.get_by_role("button", name="Nachricht hinterlassen")
        ).to_be_visible()

        async with online(town, ANNA):
            await wait_state(town, "buergerbuero", "available")
            await page.reload()  # the panel opens again by itself
            await expect(office).to_contain_text("Jetzt live bis 12:00")
            await page.get_by_role("radio", name=re.compile("Bauen")).check()
            bauen = page.locator("label.dept", has_text="Bauen und Wohnen")
            await expect(bauen).to_contain_text(
                "Bauen und Wohnen ist gerade nicht besetzt – Bürgerbüro hilft "
                "Ihnen weiter."
            )
            await expect(
                page.get_by_role("button", name="Chat mit Bürgerbüro starten")
            ).to_be_visible()
            await page.get_by_role(
                "button", name="Stattdessen Nachricht an Bauen und Wohnen"
            ).click()
            await expect(
                page.get_by_role("heading", name="Nachricht hinterlassen")
            ).to_be_visible()
            await expect(
                page.get_by_text("Bauen und Wohnen ist gerade nicht besetzt. Schreiben")
            ).to_be_visible()
    finally:
        await context.close()


async def test_typing_and_read_receipts_both_ways(
    town: Stack, browser: Browser
) -> None:
    """In Chromium: Anna types in Element's stead (a Matrix client) and the
    citizen reads "Anna Schmidt schreibt …"; her read receipt makes the
    citizen's message "gelesen"; the citizen types and Anna's client sees the
    case's citizen typing (the ghost)."""
    context = await new_context(browser, viewport={"width": 390, "height": 844})
    page = await context.new_page()
    try:
        async with online(town, ANNA):
            await wait_state(town, "buergerbuero", "available")
            reference = await chat_with_office(page, town)
            first = "Guten Tag, ist jemand da?"
            await send(page, first)
            anna = await staff_client(town, ANNA)
            try:
                room_id = await join_case_room(anna, reference)
                await wait_for_text(anna, room_id, first)
                await anna.room_typing(room_id, typing_state=True, timeout=20_000)
                typing = page.locator("buergerchat-widget .typing")
                await expect(typing).to_have_text(
                    "Anna Schmidt schreibt …", timeout=60_000
                )
                await anna.room_typing(room_id, typing_state=False)
                await expect(typing).to_have_text("", timeout=60_000)

                event_id = await event_of(anna, room_id, first)
                await anna.update_receipt_marker(room_id, event_id)
                mine = page.locator(".msg.citizen", has_text=first)
                await expect(mine).to_contain_text("gelesen", timeout=60_000)

                box = page.get_by_role("textbox", name="Ihre Nachricht")
                await box.press_sequentially("Moment, ich suche ", delay=50)
                ghost = await typing_users(anna, room_id)
                assert any(u.startswith("@bc_") for u in ghost), ghost
            finally:
                await anna.close()
    finally:
        await context.close()


async def chat_with_office(page: Page, stack: Stack) -> str:
    """Start a chat with the Bürgerbüro (others' lines name it too: "… hilft
    Ihnen weiter", so it is picked by its value); returns the reference."""
    await page.goto(stack.bridge_url + "/demo")
    await page.get_by_role("button", name="Bürgerchat öffnen").click()
    await page.locator("buergerchat-widget input[value=buergerbuero]").check()
    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Chat starten").click()
    return await shown_reference(page)


async def event_of(client: AsyncClient, room_id: str, body: str) -> str:
    response = await client.room_messages(room_id, start="", limit=50)
    for event in getattr(response, "chunk", []):
        if getattr(event, "body", None) == body:
            return str(event.event_id)
    raise AssertionError(f"{body!r} not in {room_id}")


async def typing_users(client: AsyncClient, room_id: str) -> list[str]:
    """Sync until someone types in the room; who."""
    for _ in range(20):
        response = await client.sync(timeout=1000)
        room = getattr(response, "rooms", None)
        joined = room.join.get(room_id) if room else None
        for event in joined.ephemeral if joined else []:
            if isinstance(event, TypingNoticeEvent) and event.users:
                return list(event.users)
    raise AssertionError("nobody typed in the case room")
