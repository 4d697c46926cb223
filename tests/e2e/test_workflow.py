"""Staff workflow commands in a case room, seen by the citizen and the staff."""

from __future__ import annotations

import pytest
from nio import AsyncClient

from .conftest import BERND, staff_client
from .stack import Stack
from .test_live_chat import api, join_case_room, open_case, wait_for_event
from .test_video import bot_notice

pytestmark = pytest.mark.e2e


async def say(client: AsyncClient, room_id: str, body: str) -> None:
    await client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": body}
    )


async def test_help_lists_the_commands(stack: Stack, anna: AsyncClient) -> None:
    """!help names every command that exists."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    await say(anna, room_id, "!help")
    text = await bot_notice(anna, room_id, "Befehle in diesem Raum")
    for command in ("!claim", "!transfer", "!close", "!video", "!audio", "!help"):
        assert command in text


async def test_claim_transfer_close(stack: Stack, anna: AsyncClient) -> None:
    """!claim tells the citizen who handles the case, !transfer hands it to another
    department whose staff are invited, !close ends it for the citizen and removes
    staff from the room."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])

    await say(anna, room_id, "!claim")
    claimed, _ = await wait_for_event(stack, case, lambda e: e.get("kind") == "claimed")
    assert "Anna Schmidt (Bürgerbüro)" in claimed["body"]

    await say(anna, room_id, "!transfer bauen Bitte Bauantrag prüfen")
    moved, _ = await wait_for_event(
        stack, case, lambda e: e.get("kind") == "transferred", after=claimed["cursor"]
    )
    assert "Bauen und Wohnen" in moved["body"]
    bernd = await staff_client(stack, BERND)
    try:
        bernd_room = await join_case_room(bernd, case["reference"])
        assert bernd_room == room_id
        assert "Bauen und Wohnen" in (bernd.rooms[room_id].name or "")
        _, info = await api(
            stack, "GET", f"/api/v1/cases/{case['case_id']}", token=case["token"]
        )
        assert info["department"]["id"] == "bauen"

        await say(bernd, room_id, "!close Antrag per Post")
        closed, _ = await wait_for_event(
            stack, case, lambda e: e.get("kind") == "closed", after=moved["cursor"]
        )
        # The close note is internal: the citizen reads who closed, not the note.
        assert "von Bernd Keller beendet" in closed["body"]
        assert "Antrag per Post" not in closed["body"]
        status, body = await api(
            stack,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            token=case["token"],
            json={"body": "Noch etwas", "client_id": "late"},
        )
        assert (status, body["errcode"]) == (409, "BC_CASE_CLOSED")
        for _ in range(20):
            response = await bernd.sync(timeout=500)
            if room_id in response.rooms.leave:
                break
        else:
            raise AssertionError("staff were not removed from the closed case room")
    finally:
        await bernd.close()


async def test_unknown_transfer_target_is_explained(
    stack: Stack, anna: AsyncClient
) -> None:
    """!transfer to a department that does not exist names the valid ones."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    await say(anna, room_id, "!transfer nirgendwo")
    text = await bot_notice(anna, room_id, "Unbekannte Abteilung")
    assert "buergerbuero" in text and "bauen" in text
