"""Typing and read receipts, in one process (tests/harness.py): what Synapse
pushes as ephemeral events reaches the citizen's event stream (and wakes its
long poll); the widget's typing becomes the ghost's; the flood is limited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"
STRANGER = "@someone:buergerchat.localhost"


async def push(h: Harness, edu: dict[str, Any]) -> None:
    for handler in h.az.ephemeral:
        await handler(edu)


async def events(h: Harness, case_id: str, token: str, query: str) -> dict[str, Any]:
    async with h.api() as client:
        response = await client.get(
            f"/api/v1/cases/{case_id}/events?{query}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 200
        return dict(await response.json())


async def test_staff_typing_and_reading_reach_the_citizen(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        case, token = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        first = await h.cases.post_citizen_message(fresh, "c1", "Hallo?")
        second = await h.cases.post_citizen_message(fresh, "c2", "Noch da?")
        quiet = await events(h, case.case_id, token, "after=0")
        assert (quiet["typing"], quiet["read"]) == ([], None)

        # Someone who is not staff typing is nobody's business.
        await push(
            h,
            {
                "type": "m.typing",
                "room_id": fresh.room_id,
                "content": {"user_ids": [ANNA, STRANGER]},
            },
        )
        answer = await events(h, case.case_id, token, "after=0")
        assert answer["typing"] == ["Anna Schmidt"]
        assert answer["signals"] != quiet["signals"]

        # Anna read up to the first message (her receipt on its Matrix event).
        read_event = (await h.store.get_event(first.seq)) or first
        await push(
            h,
            {
                "type": "m.receipt",
                "room_id": fresh.room_id,
                "content": {
                    read_event.matrix_event_id: {"m.read": {ANNA: {"ts": 1}}},
                },
            },
        )
        answer = await events(h, case.case_id, token, "after=0")
        assert answer["read"] == str(first.seq)
        assert int(answer["read"]) < second.seq
        # An older receipt does not move it back; a stranger's does not count.
        stranger = (await h.store.get_event(second.seq)) or second
        await push(
            h,
            {
                "type": "m.receipt",
                "room_id": fresh.room_id,
                "content": {stranger.matrix_event_id: {"m.read": {STRANGER: {}}}},
            },
        )
        assert (await events(h, case.case_id, token, "after=0"))["read"] == str(
            first.seq
        )


async def test_a_signal_wakes_the_long_poll(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        case, token = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        first = await events(h, case.case_id, token, "after=0")
        after, seen = first["next"], first["signals"]
        waiting = asyncio.create_task(
            events(h, case.case_id, token, f"after={after}&timeout=20&signals={seen}")
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await push(
            h,
            {
                "type": "m.typing",
                "room_id": fresh.room_id,
                "content": {"user_ids": [ANNA]},
            },
        )
        answer = await asyncio.wait_for(waiting, 5)
        assert answer["events"] == [] and answer["typing"] == ["Anna Schmidt"]


async def test_the_citizens_typing_is_the_ghosts_and_is_limited(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        case, token = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/api/v1/cases/{case.case_id}/typing"
        async with h.api() as client:
            response = await client.post(path, json={"typing": True}, headers=headers)
            assert response.status == 200
            assert h.hs.typing[fresh.room_id][case.ghost_mxid] == 6000
            response = await client.post(path, json={"typing": False}, headers=headers)
            assert h.hs.typing[fresh.room_id][case.ghost_mxid] == 0
            bad = await client.post(path, json={"typing": "ja"}, headers=headers)
            assert bad.status == 400
            assert (await bad.json())["field"] == "typing"
            statuses = [
                (await client.post(path, json={"typing": True}, headers=headers)).status
                for _ in range(25)
            ]
            assert statuses.count(200) == 18 and statuses.count(429) == 7
