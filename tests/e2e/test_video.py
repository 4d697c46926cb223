"""Escalation to Jitsi video from a case room, seen from Synapse and the citizen."""

from __future__ import annotations

import asyncio

import pytest
from nio import AsyncClient

from .conftest import staff_client
from .stack import Stack
from .test_live_chat import (
    api,
    join_case_room,
    open_case,
    wait_for_event,
    wait_for_room_event,
)

pytestmark = pytest.mark.e2e


async def widget_state(client: AsyncClient, room_id: str) -> list[dict]:
    state = await client.room_get_state(room_id)
    return [e for e in state.events if e["type"] == "im.vector.modular.widgets"]


async def bot_notice(client: AsyncClient, room_id: str, contains: str) -> str:
    event = await wait_for_room_event(
        client,
        room_id,
        lambda e: (
            contains in getattr(e, "body", "") and e.sender.startswith("@buergerchat")
        ),
        what=f"a bot notice containing {contains!r}",
    )
    return str(event.body)


async def test_video_starts_widget_and_citizen_can_join(
    stack: Stack, anna: AsyncClient
) -> None:
    """!video puts an Element Jitsi widget into the room, the citizen's stream gets a
    video event and the join endpoint names the same conference; !video end removes
    the widget with empty content and tells the citizen."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!video"}
    )
    await bot_notice(anna, room_id, "Videoberatung läuft")

    widgets = await widget_state(anna, room_id)
    assert len(widgets) == 1
    widget = widgets[0]
    content = widget["content"]
    assert widget["state_key"] == content["id"]
    assert content["type"] == "jitsi" and content["creatorUserId"] == anna.user_id
    assert content["data"]["domain"] == "meet.jit.si"
    assert content["data"]["isAudioOnly"] is False
    conference = content["data"]["conferenceId"]
    assert f"confId={conference}" in content["url"]

    started, _ = await wait_for_event(
        stack, case, lambda e: e.get("kind") == "video_started"
    )
    assert "Anna Schmidt" in started["body"]
    status, join = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}/video", token=case["token"]
    )
    assert status == 200 and join["room"] == conference
    assert join["display_name"] == "Eva Muster" and join["helpline"]

    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "!video end"}
    )
    await bot_notice(anna, room_id, "ist beendet")
    widgets = await widget_state(anna, room_id)
    assert all(w["content"] == {} for w in widgets)
    ended, _ = await wait_for_event(
        stack, case, lambda e: e.get("kind") == "video_ended", after=started["cursor"]
    )
    assert "beendet" in ended["body"]
    status, _ = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}/video", token=case["token"]
    )
    assert status == 404


async def test_video_refused_for_non_staff(stack: Stack) -> None:
    """A Matrix user who is not staff cannot start a call with !video."""
    import yaml

    from bridge.homeserver import register_user

    secret = yaml.safe_load((stack.data_dir / "secrets.yaml").read_text())
    await register_user(
        stack.homeserver_url,
        secret["registration_shared_secret"],
        "guest",
        "guest-password-123",
    )
    guest = AsyncClient(stack.homeserver_url, "@guest:buergerchat.localhost")
    await guest.login("guest-password-123")
    anna = await staff_client(stack, "@anna.schmidt:buergerchat.localhost")
    try:
        case = await open_case(stack)
        room_id = await join_case_room(anna, case["reference"])
        # Staff bring a colleague from outside the staff list into the room.
        await anna.room_invite(room_id, guest.user_id)
        await asyncio.sleep(0.5)
        await guest.join(room_id)
        await guest.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!video"}
        )
        await bot_notice(anna, room_id, "nur für Mitarbeitende")
        assert await widget_state(anna, room_id) == []
    finally:
        await guest.close()
        await anna.close()
