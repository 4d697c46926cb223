"""Routing end to end: live / queued / offline as departments.yaml says, a queue
that counts down, team notices, staff commands from Element (a nio client), reload
of the rules while running, end of live hours and presence, inactivity close."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient

from .conftest import ANNA, staff_client
from .stack import Stack, make_stack, shared_rules
from .test_live_chat import api, join_case_room, metric, scrape, wait_for_event
from .test_video import bot_notice

pytestmark = pytest.mark.e2e

CLARA = "@clara.wagner:buergerchat.localhost"


def department(data: dict[str, Any], dep_id: str) -> dict[str, Any]:
    return next(d for d in data["departments"] if d["id"] == dep_id)


def one_person_rules(data: dict[str, Any]) -> None:
    """Thursday 10:00: the Bürgerbüro (Anna alone) takes one chat at a time; Bauen
    has no Thursday hours and no fallback (closed); Standesamt takes many.
    Anna administers (invited to the admin room)."""
    shared_rules(data)
    data["routing"]["admins"] = [ANNA]
    data["routing"]["inactivity_close_minutes"] = 0
    department(data, "buergerbuero")["max_cases_per_staff"] = 1
    bauen = department(data, "bauen")
    bauen["hours"].pop("do")
    bauen["fallback"] = None


async def open_in(stack: Stack, dep: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return await api(
        stack,
        "POST",
        "/api/v1/cases",
        json={"department": dep, "consent": True, "name": "Eva Muster", **extra},
    )


async def say(client: AsyncClient, room_id: str, body: str) -> None:
    await client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": body}
    )


async def history_with(
    client: AsyncClient, room_id: str, check: Callable[[str], bool]
) -> str:
    """The first message body in the room's history (newest first) that passes;
    waits up to a minute (a PDF is rendered on a busy 2-core machine)."""
    for _ in range(120):
        response = await client.room_messages(room_id, start="", limit=100)
        for event in getattr(response, "chunk", []):
            body = getattr(event, "body", None)
            if body and check(body):
                return str(body)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no matching message in {room_id}")


async def join_room_named(client: AsyncClient, name: str) -> str:
    """Join the room whose name contains ``name``, also when its invite came in an
    earlier sync of this client (join_case_room only looks at new invites)."""
    for _ in range(40):
        await client.sync(timeout=500)
        for room_id, room in list(client.invited_rooms.items()):
            if name in (room.name or room.display_name or ""):
                await client.join(room_id)
        for room_id, room in client.rooms.items():
            if name in (room.name or ""):
                return room_id
    raise AssertionError(f"no room named {name!r}")


async def case_info(stack: Stack, case: dict[str, Any]) -> dict[str, Any]:
    status, body = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}", token=case["token"]
    )
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Thursday 10:00 with one_person_rules."""
    s = make_stack(tmp_path_factory.mktemp("routing"), edit_rules=one_person_rules)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
async def clara(line: Stack) -> AsyncIterator[AsyncClient]:
    client = await staff_client(line, CLARA)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def anna_line(line: Stack) -> AsyncIterator[AsyncClient]:
    client = await staff_client(line, ANNA)
    try:
        yield client
    finally:
        await client.close()


async def test_open_department_goes_live_closed_one_is_offline(line: Stack) -> None:
    """Standesamt is live with free staff: 201 live. Bauen has no Thursday hours:
    409 BC_OFFLINE naming the offline form and Friday 09:00, nothing created."""
    status, live = await open_in(line, "standesamt")
    assert status == 201 and live["state"] == "live" and live["queue"] is None
    assert (await case_info(line, live))["state"] == "live"

    status, refused = await open_in(line, "bauen")
    assert status == 409, refused
    assert refused["errcode"] == "BC_OFFLINE"
    assert "/api/v1/offline-messages" in refused["error"]
    assert refused["next_opening"].startswith("2026-11-20T09:00:00+01:00")
    assert "case_id" not in refused and "token" not in refused
    status, topic_only = await api(
        line,
        "POST",
        "/api/v1/cases",
        json={"topic": "geburt", "consent": True},
    )
    assert status == 201 and topic_only["department"] == "standesamt"


async def test_queue_positions_count_down(line: Stack, anna_line: AsyncClient) -> None:
    """Anna takes one chat at a time: the first citizen goes live, three more wait
    at positions 1, 2, 3 with 8-minute steps; each !close moves the line, the last
    citizen sees 3 → 2 → 1 and then their turn. Messages written while waiting
    reach the room."""
    status, first = await open_in(line, "buergerbuero")
    assert (status, first["state"]) == (201, "live")
    waiting = []
    for position in (1, 2, 3):
        status, case = await open_in(line, "buergerbuero")
        assert status == 201, case
        assert case["state"] == "queued"
        assert case["queue"] == {
            "position": position,
            "estimated_wait_minutes": 8 * position,
        }
        waiting.append(case)
    last = waiting[-1]
    assert (await case_info(line, last))["queue"]["position"] == 3
    # Operators see the line (/metrics).
    lined_up = await scrape(line)
    assert metric(lined_up, "buergerchat_queue_length", department="buergerbuero") == 3

    status, sent = await api(
        line,
        "POST",
        f"/api/v1/cases/{waiting[0]['case_id']}/messages",
        token=waiting[0]["token"],
        json={"body": "Ich warte gern.", "client_id": "w1"},
    )
    assert status == 201 and sent["event_id"]

    status, before = await api(
        line, "GET", f"/api/v1/cases/{last['case_id']}/events", token=last["token"]
    )
    assert status == 200
    cursor = before["next"]
    moves = []
    for current in (first, *waiting[:-1]):
        room_id = await join_case_room(anna_line, current["reference"])
        if current is waiting[0]:
            await history_with(anna_line, room_id, lambda b: b == "Ich warte gern.")
        await say(anna_line, room_id, "!close")
        moved, _ = await wait_for_event(
            line, last, lambda e: e.get("kind") in ("queue", "routed"), after=cursor
        )
        cursor = moved["cursor"]
        moves.append((moved["kind"], moved.get("position")))
    assert moves == [("queue", 2), ("queue", 1), ("routed", None)]
    routed, seen = await wait_for_event(
        line, last, lambda e: e.get("kind") == "routed", after="0"
    )
    queue_events = [e for e in seen if e.get("kind") == "queue"]
    assert [e["position"] for e in queue_events] == [3, 2, 1]
    assert [e["estimated_wait_minutes"] for e in queue_events] == [24, 16, 8]
    assert "an der Reihe" in routed["body"]
    info = await case_info(line, last)
    assert (info["state"], info["queue"]) == ("live", None)
    done = await scrape(line)
    assert metric(done, "buergerchat_queue_length", department="buergerbuero") == 0
    waits = "buergerchat_queue_wait_seconds_count"
    assert metric(done, waits, department="buergerbuero") >= 3
    room_id = await join_case_room(anna_line, last["reference"])
    await say(anna_line, room_id, "!close")
    await wait_for_event(line, last, lambda e: e.get("kind") == "closed")


async def test_team_notice_has_reference_topic_first_message_and_link(
    line: Stack, clara: AsyncClient
) -> None:
    """The first citizen message makes the notice in the department's team room:
    reference, topic label, the message and a matrix.to link to the case room."""
    status, case = await open_in(line, "standesamt", topic="geburt")
    assert status == 201
    await api(
        line,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": "Ich brauche eine Geburtsurkunde.", "client_id": "t1"},
    )
    team = await join_room_named(clara, "Team Standesamt")
    notice = await history_with(clara, team, lambda b: case["reference"] in b)
    assert "Geburt und Geburtsurkunde" in notice
    assert "Ich brauche eine Geburtsurkunde." in notice
    assert "https://matrix.to/#/!" in notice


EXPECTED_COMMANDS = {
    "claim",
    "transfer",
    "close",
    "help",
    "video",
    "audio",
    "transcript",
    "revoke",
    "block",
    "unblock",
    "goodbye",
    "erase",
    # the virtual citizen office (bots/booking); "invite" is !invite-guest
    "next",
    "invite",
    "calendar",
}


async def test_help_lists_exactly_the_commands_and_each_works(
    line: Stack, clara: AsyncClient
) -> None:
    """!help from Clara's own client lists the commands; each listed one does what
    it says: claim, video, audio, transcript, transfer (routed by the target's
    strategy, with a notice in its team room), close."""
    status, case = await open_in(line, "standesamt")
    assert status == 201
    room_id = await join_case_room(clara, case["reference"])
    await say(clara, room_id, "!help")
    text = await bot_notice(clara, room_id, "Befehle in diesem Raum")
    listed = set(re.findall(r"^!(\w+)", text, re.MULTILINE))
    assert listed == EXPECTED_COMMANDS, text

    def kind(name: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e.get("kind") == name

    await say(clara, room_id, "!claim")
    claimed, _ = await wait_for_event(line, case, kind("claimed"))
    assert "Clara Wagner (Standesamt)" in claimed["body"]
    await say(clara, room_id, "!video")
    started, _ = await wait_for_event(line, case, kind("video_started"))
    assert started["audio_only"] is False
    await say(clara, room_id, "!video end")
    ended, _ = await wait_for_event(line, case, kind("video_ended"))
    await say(clara, room_id, "!audio")
    audio, _ = await wait_for_event(
        line, case, kind("video_started"), after=ended["cursor"]
    )
    assert audio["audio_only"] is True
    await say(clara, room_id, "!audio end")
    await wait_for_event(line, case, kind("video_ended"), after=audio["cursor"])
    await say(clara, room_id, "!transcript")
    # From the room's history: a sync's timeline may leave out older events.
    await history_with(clara, room_id, lambda b: f"Verlauf {case['reference']}" in b)

    await say(clara, room_id, "!transfer buergerbuero Bitte Ausweis prüfen")
    moved, _ = await wait_for_event(line, case, kind("transferred"))
    assert "Bürgerbüro" in moved["body"]
    anna = await staff_client(line, ANNA)
    try:
        assert await join_case_room(anna, case["reference"]) == room_id
        team = await join_room_named(anna, "Team Buergerbuero")
        notice = await history_with(
            anna, team, lambda b: case["reference"] in b and "Weitergegeben" in b
        )
        assert "Clara Wagner" in notice and "Bitte Ausweis prüfen" in notice
    finally:
        await anna.close()
    await say(clara, room_id, "!revoke")
    await bot_notice(clara, room_id, "Link(s) zu " + case["reference"])
    # !block, !unblock and !erase are for the admins (routing.admins: Anna here);
    # what they do is tested in test_abuse.py and test_privacy.py
    await say(clara, room_id, "!block Test")
    await bot_notice(clara, room_id, "Sperren dürfen nur die Admins")
    await say(clara, room_id, "!erase")
    await bot_notice(clara, room_id, "Löschen dürfen nur die Admins")
    await say(clara, room_id, "!close erledigt")
    closed, seen = await wait_for_event(line, case, kind("closed"))
    # The note is the staff's: never in what the citizen reads.
    assert not any("erledigt" in str(e) for e in seen), seen
    assert "Clara Wagner" in closed["body"]


async def test_goodbye_says_it_to_the_citizen_and_closes(
    line: Stack, clara: AsyncClient
) -> None:
    """!goodbye <text>: the citizen reads the text from Clara, then the close."""
    status, case = await open_in(line, "standesamt")
    assert status == 201
    room_id = await join_case_room(clara, case["reference"])
    await say(clara, room_id, "!goodbye Alles Gute für Sie und Ihre Familie!")
    closed, seen = await wait_for_event(line, case, lambda e: e.get("kind") == "closed")
    said = [e for e in seen if e["type"] == "message" and e["sender"] == "staff"]
    assert [(e["body"], e["sender_name"]) for e in said] == [
        ("Alles Gute für Sie und Ihre Familie!", "Clara Wagner")
    ]
    assert int(said[0]["cursor"]) < int(closed["cursor"])


async def status_of(stack: Stack, dep: str) -> dict[str, Any]:
    status, body = await api(stack, "GET", "/api/v1/status")
    assert status == 200
    return next(d for d in body["departments"] if d["id"] == dep)


async def test_reload_good_edit_applies_broken_edit_alerts_admins(
    line: Stack, anna_line: AsyncClient
) -> None:
    """A good edit of departments.yaml shows in the status API without a restart; a
    broken one keeps the last good rules and the admin room hears file:line:key."""
    path = line.config_dir / "departments.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        line.edit_config(
            "departments.yaml",
            lambda d: department(d, "standesamt").update(name="Standesamt Musterstadt"),
        )
        for _ in range(50):
            if (await status_of(line, "standesamt"))[
                "name"
            ] == "Standesamt Musterstadt":
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the good edit was not picked up")

        good = path.read_text(encoding="utf-8")
        broken = good.replace("strategy: broadcast", "strategy: fastest", 1)
        assert broken != good
        path.write_text(broken, encoding="utf-8")
        line_no = next(
            n for n, row in enumerate(broken.splitlines(), 1) if "fastest" in row
        )
        admin = await join_room_named(anna_line, "Buergerchat Admin")
        alert = await history_with(
            anna_line, admin, lambda b: "NICHT übernommen" in b and "fastest" in b
        )
        assert f"{path}:{line_no}: departments[2].strategy: unknown strategy" in alert
        assert (await status_of(line, "standesamt"))["name"] == "Standesamt Musterstadt"
        status, case = await open_in(line, "standesamt")
        assert (status, case["state"]) == (201, "live")
    finally:
        path.write_text(original, encoding="utf-8")
    for _ in range(50):
        if (await status_of(line, "standesamt"))["name"] == "Standesamt":
            break
        await asyncio.sleep(0.2)


async def test_inactive_case_is_closed(line: Stack) -> None:
    """With inactivity_close_minutes set (by a reload) to 6 seconds, a chat without
    messages is closed for the citizen with the reason."""
    path = line.config_dir / "departments.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        line.edit_config(
            "departments.yaml",
            lambda d: d["routing"].update(inactivity_close_minutes=0.1),
        )
        await asyncio.sleep(3)  # the next reload round
        status, case = await open_in(line, "standesamt")
        assert status == 201
        closed, _ = await wait_for_event(
            line, case, lambda e: e.get("kind") == "closed"
        )
        assert "ohne Nachricht automatisch beendet" in closed["body"]
        assert (await case_info(line, case))["closed"] is True
    finally:
        path.write_text(original, encoding="utf-8")


# --- end of live hours, with presence ---------------------------------------------


def presence_rules(data: dict[str, Any]) -> None:
    """Anna alone at the Bürgerbüro, one chat at a time, presence judged."""
    one_person_rules(data)
    data["routing"]["use_presence"] = True


@pytest.fixture(scope="module")
def closing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Thursday 11:58:30: the Bürgerbüro is live until 12:00."""
    s = make_stack(tmp_path_factory.mktemp("closing"), edit_rules=presence_rules)
    s.extra_env = {"BUERGERCHAT_NOW": "2026-11-19T11:58:30+01:00"}
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_end_of_hours_and_presence(closing: Stack, tmp_path: Path) -> None:
    """Anna online (syncing, in her team room) gets the first chat; the second
    waits. Anna goes offline: a third citizen gets 409 (nobody online). At 12:00 the
    waiting citizen is offered the offline form; the live chat stays open."""
    office = await status_of(closing, "buergerbuero")
    assert office["open"] and office["until"].startswith("2026-11-19T12:00:00+01:00")
    # Anna never logged in: she does not count (unknown presence is offline).
    assert not office["live"]
    assert office["availability"]["state"] == "nobody_online"
    anna = await staff_client(closing, ANNA)
    try:
        # Joined to her team room by the rules, not by a click of hers.
        await join_room_named(anna, "Team Buergerbuero")
        await anna.sync(timeout=0, set_presence="online")
        for _ in range(20):  # the status is kept for 5 s
            if (await status_of(closing, "buergerbuero"))["live"]:
                break
            await asyncio.sleep(0.5)
        status, first = await open_in(closing, "buergerbuero")
        assert (status, first["state"]) == (201, "live"), first
        status, second = await open_in(closing, "buergerbuero")
        assert (status, second["state"]) == (201, "queued"), second
        await join_case_room(anna, first["reference"])

        await anna.set_presence("offline")
        status, refused = await open_in(closing, "buergerbuero")
        assert (status, refused["errcode"]) == (409, "BC_OFFLINE"), refused
        assert (refused["reason"], refused["next_opening"]) == ("nobody_online", None)

        over, _ = await wait_for_event(
            closing, second, lambda e: e.get("kind") == "queue_closed"
        )
        assert over["offline_offer"] is True
        assert "Nachricht" in over["body"]
        assert over["next_opening"].startswith("2026-11-19T14:00:00+01:00")
        info = await case_info(closing, second)
        assert (info["state"], info["queue"], info["closed"]) == ("queued", None, False)
        still = await case_info(closing, first)
        assert (still["state"], still["closed"]) == ("live", False)
        assert not (await status_of(closing, "buergerbuero"))["live"]
    finally:
        await anna.close()
