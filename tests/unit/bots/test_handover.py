"""The handing side of a hand-over in one process (tests/harness.py): what the
end-to-end test cannot time or force — the partner's deadline, an invite job
for a hand-over answered otherwise, answers and closings from the wrong
sender. The partner's bot is simulated by delivering its events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bots.handover.town import ANSWER, CLOSED, HANDOVER
from bridge.db.models import Case
from bridge.lifecycle import Kind
from tests.harness import Harness, harness, minutes

ANNA = "@anna.schmidt:buergerchat.localhost"
COUNTY = "kreis.example"
COUNTY_BOT = f"@buergerchat:{COUNTY}"
COUNTY_STAFF = f"@klara.kreis:{COUNTY}"


def with_county(data: dict[str, Any]) -> None:
    data["federation"] = {
        "partners": [
            {
                "id": "landkreis",
                "server_name": COUNTY,
                "name": "Landratsamt",
                "departments": ["kfz"],
            }
        ]
    }


async def asked_and_agreed(h: Harness) -> tuple[Case, str]:
    """A live case, Anna in its room, `!transfer landkreis:kfz`, the citizen
    agrees through the API; returns the case and its room."""
    case, token = await h.open_case()
    fresh = await h.store.get_case(case.case_id)
    assert fresh is not None and fresh.room_id
    await h.staff_joins(fresh, ANNA)
    await h.staff_says(fresh, ANNA, "!transfer landkreis:kfz Zulassung")
    ask = next(
        e for e in await h.timeline(fresh) if e.get("kind") == "handover_consent"
    )
    async with h.api() as client:
        async with client.post(
            f"/api/v1/cases/{case.case_id}/handover",
            json={"consent": True, "ask": ask["ask"]},
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200, await r.text()
    return fresh, fresh.room_id


async def partner_state(
    h: Harness, room_id: str, kind: Any, content: dict[str, Any], sender: str
) -> None:
    await h.deliver(
        {
            "type": str(kind),
            "room_id": room_id,
            "sender": sender,
            "state_key": COUNTY,
            "content": content,
        }
    )


async def state(h: Harness, case: Case) -> str:
    fresh = await h.store.get_case(case.case_id)
    assert fresh is not None
    return fresh.state


async def test_the_partner_is_invited_and_its_answer_hands_the_case_over(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await asked_and_agreed(h)
        await h.run_jobs()
        room = h.hs.rooms[room_id]
        assert room.state[(str(HANDOVER), COUNTY)]["department"] == "kfz"
        assert room.members[COUNTY_BOT] == "invite"
        assert room.power[COUNTY_BOT] == 50
        # Only the partner's bot answers for the partner.
        await partner_state(h, room_id, ANSWER, {"accepted": True}, COUNTY_STAFF)
        assert await state(h, case) == "live"
        await partner_state(
            h, room_id, ANSWER, {"accepted": True, "reference": "LK-1"}, COUNTY_BOT
        )
        assert await state(h, case) == "handed_over"
        assert room.members[ANNA] == "leave"  # the town's staff stepped back
        assert room.power[ANNA] == -1
        # Had she a voice still, she could not move it to a department here.
        await h.staff_says(case, ANNA, "!transfer bauen")
        assert await state(h, case) == "handed_over"
        replies = [m["body"] for m in h.hs.messages(room_id)]
        assert any("liegt bei einer Partnerbehörde" in r for r in replies), replies
        # The partner's staff now reach the citizen, with the partner's name.
        await h.staff_says(case, COUNTY_STAFF, "Hier der Kreis.")
        said = [e for e in await h.timeline(case) if e.get("body") == "Hier der Kreis."]
        assert said and said[0]["sender_name"].endswith("(Landratsamt)")
        # A closing from the partner's staff is not the partner's; its bot's is.
        await partner_state(h, room_id, CLOSED, {"closed": True}, COUNTY_STAFF)
        assert await state(h, case) == "handed_over"
        await partner_state(h, room_id, CLOSED, {"closed": True}, COUNTY_BOT)
        assert await state(h, case) == "closed"
        lines = await h.system_lines(case)
        assert any("Landratsamt hat den Chat" in line for line in lines), lines


async def test_no_answer_within_15_minutes_is_a_refusal_and_the_invite_is_taken_back(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await asked_and_agreed(h)
        await h.run_jobs()
        room = h.hs.rooms[room_id]
        assert room.members[COUNTY_BOT] == "invite"
        h.clock.advance(minutes(14))
        await h.run_jobs()
        assert await state(h, case) == "live"
        assert room.members[COUNTY_BOT] == "invite"
        h.clock.advance(minutes(2))
        await h.run_jobs()
        assert room.members[COUNTY_BOT] == "leave"  # the invite taken back
        assert COUNTY_BOT not in room.power
        kinds = [e.get("kind") for e in await h.timeline(case)]
        assert "handover_refused" in kinds
        assert await state(h, case) == "live"
        # A late "yes" changes nothing.
        await partner_state(h, room_id, ANSWER, {"accepted": True}, COUNTY_BOT)
        assert await state(h, case) == "live"


async def test_an_invite_for_a_hand_over_answered_otherwise_is_not_sent(
    tmp_path: Path,
) -> None:
    """The citizen's answers raced (agreed, then declined): the invite job
    finds the hand-over over, invites nobody and records no refusal."""
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await asked_and_agreed(h)
        await h.cases.lifecycle.record(
            case.case_id,
            Kind.HANDOVER_DECLINED,
            actor="citizen",
            data={"by": "citizen", "partner": "landkreis"},
        )
        await h.run_jobs()
        room = h.hs.rooms[room_id]
        assert COUNTY_BOT not in room.members
        assert (str(HANDOVER), COUNTY) not in room.state
        kinds = [e.get("kind") for e in await h.timeline(case)]
        assert "handover_refused" not in kinds


async def test_an_older_question_and_an_undeclared_department_are_refused(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, token = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        await h.staff_joins(fresh, ANNA)
        await h.staff_says(fresh, ANNA, "!transfer landkreis:bauamt")
        assert not [
            e for e in await h.timeline(fresh) if e.get("kind") == "handover_consent"
        ]
        replies = [m["body"] for m in h.hs.messages(fresh.room_id)]
        assert any("bauamt" in r and "kfz" in r for r in replies), replies
        await h.staff_says(fresh, ANNA, "!transfer landkreis:kfz")
        await h.staff_says(fresh, ANNA, "!transfer landkreis:kfz zweiter Versuch")
        asks = [
            e for e in await h.timeline(fresh) if e.get("kind") == "handover_consent"
        ]
        assert len(asks) == 2
        async with h.api() as client:
            async with client.post(
                f"/api/v1/cases/{case.case_id}/handover",
                json={"consent": True, "ask": asks[0]["ask"]},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                body = await r.json()
                assert (r.status, body["errcode"]) == (409, "BC_NO_HANDOVER"), body
            async with client.post(
                f"/api/v1/cases/{case.case_id}/handover",
                json={"consent": "ja"},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                body = await r.json()
                assert (r.status, body["field"]) == (400, "consent"), body
