"""A handed-over citizen waiting in the partner's line, and going back
(bots/handover/waiting.py), in one process (tests/harness.py).

The handing side: the partner's bot is simulated by delivering its state
events. The taking side: the partner's bot's room, hand-over and invite are
made in the fake homeserver and delivered, our bot works them off.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionError

from bots.handover.town import ANSWER, CLOSED, HANDOVER
from bots.handover.waiting import STATUS
from bridge.db.models import Case
from bridge.lifecycle import Kind
from tests.harness import Harness, harness
from tests.unit.bots.test_handover import (
    ANNA,
    COUNTY,
    COUNTY_BOT,
    COUNTY_STAFF,
    asked_and_agreed,
    partner_state,
    state,
    with_county,
)

TOWN = "buergerchat.localhost"
COUNTY_CITIZEN = f"@bc_7f3a:{COUNTY}"


async def handed_over(h: Harness) -> tuple[Case, str]:
    case, room_id = await asked_and_agreed(h)
    await h.run_jobs()
    await partner_state(
        h, room_id, ANSWER, {"accepted": True, "reference": "LK-1"}, COUNTY_BOT
    )
    assert await state(h, case) == "handed_over"
    return case, room_id


async def case_json(h: Harness, case: Case, token: str) -> dict[str, Any]:
    async with h.api() as client:
        async with client.get(
            f"/api/v1/cases/{case.case_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body


async def test_the_partners_line_is_shown_to_the_citizen_until_someone_takes_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await handed_over(h)
        token = await h.cases.tokens.mint_chat(case.case_id)
        queued = {"state": "queued", "position": 2, "estimated_wait_minutes": 10}
        # Not from the partner's bot: nothing.
        await partner_state(h, room_id, STATUS, queued, COUNTY_STAFF)
        assert (await case_json(h, case, token))["queue"] is None
        await partner_state(h, room_id, STATUS, queued, COUNTY_BOT)
        assert (await case_json(h, case, token))["queue"] == {
            "position": 2,
            "estimated_wait_minutes": 10,
        }
        # The same place again (a replay, or a rewrite): one line only.
        await partner_state(h, room_id, STATUS, queued, COUNTY_BOT)
        lines = [e for e in await h.timeline(case) if e.get("kind") == "queue"]
        assert [e["position"] for e in lines] == [2]
        # Rubbish from the partner is not shown.
        await partner_state(
            h, room_id, STATUS, {"state": "queued", "position": "zwei"}, COUNTY_BOT
        )
        await partner_state(h, room_id, STATUS, queued | {"position": 1}, COUNTY_BOT)
        await partner_state(
            h, room_id, STATUS, queued | {"position": 10**12}, COUNTY_BOT
        )
        lines = [e for e in await h.timeline(case) if e.get("kind") == "queue"]
        assert [e["position"] for e in lines] == [2, 1]
        await partner_state(h, room_id, STATUS, {"state": "live"}, COUNTY_BOT)
        body = await case_json(h, case, token)
        assert (body["state"], body["queue"]) == ("handed_over", None)
        kinds = [e.get("kind") for e in await h.timeline(case)]
        assert kinds[-3:] == ["queue", "queue", "routed"], kinds
        routed = [e for e in await h.timeline(case) if e.get("kind") == "routed"]
        assert "Landratsamt" in routed[-1]["body"]


async def test_a_place_written_before_the_answer_is_shown_with_the_hand_over(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await asked_and_agreed(h)
        await h.run_jobs()
        queued = {"state": "queued", "position": 1, "estimated_wait_minutes": 5}
        # Written (by the partner's bot) before its answer reaches us.
        await h.hs.intent(COUNTY_BOT).send_state_event(
            room_id, STATUS, queued, state_key=COUNTY
        )
        await partner_state(h, room_id, STATUS, queued, COUNTY_BOT)
        assert not [e for e in await h.timeline(case) if e.get("kind") == "queue"]
        await partner_state(
            h, room_id, ANSWER, {"accepted": True, "reference": "LK-1"}, COUNTY_BOT
        )
        lines = [e for e in await h.timeline(case) if e.get("kind") == "queue"]
        assert [e["position"] for e in lines] == [1]


async def test_a_case_given_back_joins_our_line_and_our_staff_may_write_again(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await handed_over(h)
        room = h.hs.rooms[room_id]
        room.members[COUNTY_STAFF] = "join"  # the county's staff member read on
        assert room.power[ANNA] == -1 and room.members[ANNA] == "leave"
        back = {"closed": True, "returned": True, "reason": "Sprechzeit zu Ende"}
        # Only the partner's bot gives it back.
        await partner_state(h, room_id, CLOSED, back, COUNTY_STAFF)
        assert await state(h, case) == "handed_over"
        returned = {
            "type": str(CLOSED),
            "room_id": room_id,
            "sender": COUNTY_BOT,
            "state_key": COUNTY,
            "content": back,
            "event_id": "$returned",
        }
        await h.deliver(dict(returned))
        assert await state(h, case) == "queued"
        await h.run_jobs()
        # Our routing took it: Anna is free, so it is live and she is invited.
        assert await state(h, case) == "live"
        assert room.power[ANNA] == 50
        assert room.members[ANNA] == "invite"
        assert COUNTY_BOT not in room.power  # the partner no longer acts here
        assert room.members[COUNTY_BOT] != "leave"  # but keeps its record
        assert room.members[COUNTY_STAFF] == "leave"  # and its staff read no more
        kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert Kind.HANDED_BACK in kinds and kinds[-1] == Kind.ROUTED, kinds
        lines = await h.system_lines(case)
        assert any("liegt wieder bei uns" in line for line in lines), lines
        replies = [m["body"] for m in h.hs.messages(room_id)]
        assert any("zurückgegeben: Sprechzeit zu Ende" in r for r in replies)
        # The partner's people no longer reach the citizen.
        await h.staff_says(case, COUNTY_STAFF, "Noch da?")
        assert "Noch da?" not in [e.get("body") for e in await h.timeline(case)]
        # The same event again (the inbox works it off again after a crash),
        # and the reaction again: one line, one reply, the case stays ours.
        await h.deliver(dict(returned))
        back = next(
            e
            for e in await h.cases.lifecycle.history(case.case_id)
            if e.kind == Kind.HANDED_BACK
        )
        assert await h.jobs.get(f"handover.back:{back.id}") is not None
        await h.jobs.enqueue("handover.back", "again", {"event": back.id})
        await h.run_jobs()
        assert await state(h, case) == "live"
        lines = [e for e in await h.timeline(case) if e.get("kind") == "handed_back"]
        assert len(lines) == 1
        replies = [m["body"] for m in h.hs.messages(room_id)]
        assert len([r for r in replies if "zurückgegeben" in r]) == 1
        # It cannot go to the same partner again (its bot keeps its record of
        # this room, and takes no second case in it): said at once.
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "!transfer landkreis:kfz")
        replies = [m["body"] for m in h.hs.messages(room_id)]
        assert any("hatte diesen Fall schon" in r for r in replies), replies
        assert (
            len(
                [
                    e
                    for e in await h.timeline(case)
                    if e.get("kind") == "handover_consent"
                ]
            )
            == 1
        )


async def test_a_case_given_back_without_the_routing_bot_goes_to_the_department(
    tmp_path: Path,
) -> None:
    """A town that runs no routing bot: the case comes back live, and every
    staff member of its department is invited and may write, online or not
    (routing would keep it queued: Anna, the desk's only one, is offline)."""
    async with harness(tmp_path, change=with_county) as h:
        case, room_id = await handed_over(h)
        room = h.hs.rooms[room_id]
        h.cases.router = None
        h.hs.presence[ANNA] = "offline"
        back = {"closed": True, "returned": True, "reason": "Sprechzeit zu Ende"}
        await partner_state(h, room_id, CLOSED, back, COUNTY_BOT)
        assert await state(h, case) == "queued"
        await h.run_jobs()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.state == "live"
        department = h.config.department(fresh.department)
        assert department is not None
        staff = [s.mxid for s in department.staff]
        assert sorted(fresh.invited or []) == sorted(staff) == [ANNA]
        assert room.members[ANNA] == "invite" and room.power[ANNA] == 50
        kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert kinds[-2:] == [Kind.HANDED_BACK, Kind.ROUTED], kinds
        # Again (a rerun after a crash): nothing moves, nobody is asked twice.
        back_event = next(
            e
            for e in await h.cases.lifecycle.history(case.case_id)
            if e.kind == Kind.HANDED_BACK
        )
        await h.jobs.enqueue("handover.back", "again", {"event": back_event.id})
        await h.run_jobs()
        again = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert again == kinds
        lines = [e for e in await h.timeline(case) if e.get("kind") == "handed_back"]
        assert len(lines) == 1


# --- the taking side -------------------------------------------------------------


async def county_hands_over(h: Harness, department: str) -> str:
    """The county's bot makes a room with its citizen, writes the hand-over for
    our server and invites our bot; returns the room."""
    county = h.hs.intent(COUNTY_BOT)
    room_id = str(await county.create_room(invitees=[COUNTY_CITIZEN]))
    h.hs.rooms[room_id].members[COUNTY_CITIZEN] = "join"
    handover = {
        "department": department,
        "reference": "LK-7",
        "citizen": COUNTY_CITIZEN,
        "citizen_name": "Erika Muster",
        "language": "de",
        "note": "Ummeldung",
        "from": "Landratsamt",
    }
    await county.send_state_event(room_id, HANDOVER, handover, state_key=TOWN)
    await county.invite_user(room_id, h.config.bot_mxid)
    await h.deliver(
        {
            "type": "m.room.member",
            "room_id": room_id,
            "sender": COUNTY_BOT,
            "state_key": h.config.bot_mxid,
            "content": {"membership": "invite"},
        }
    )
    await h.run_jobs()
    return room_id


def written(h: Harness, room_id: str, kind: Any) -> dict[str, Any]:
    return h.hs.rooms[room_id].state.get((str(kind), TOWN), {})


async def annas_three_cases(h: Harness) -> list[Case]:
    """Anna (the Bürgerbüro's one staff member) at her limit of three."""
    return [(await h.open_case())[0] for _ in range(3)]


async def test_a_busy_department_takes_the_case_into_its_line_and_says_where_it_is(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        mine = await annas_three_cases(h)
        room_id = await county_hands_over(h, "buergerbuero")
        assert written(h, room_id, ANSWER)["accepted"] is True
        case = await h.store.case_by_room(room_id)
        assert case is not None and case.state == "queued"
        assert written(h, room_id, STATUS) == {
            "state": "queued",
            "position": 1,
            "estimated_wait_minutes": case.queue_wait_minutes,
        }
        assert ANNA not in h.hs.rooms[room_id].members
        # A change no wake-up reported (lost in a crash): written within a
        # minute all the same.
        stale = {"state": "queued", "position": 7}
        await h.hs.intent(h.config.bot_mxid).send_state_event(
            room_id, STATUS, stale, state_key=TOWN
        )
        h.clock.advance(timedelta(seconds=61))
        await h.run_jobs()
        assert written(h, room_id, STATUS)["position"] == 1

        # Nothing changed: the minute's rerun writes nothing.
        def statuses() -> int:
            timeline = h.hs.rooms[room_id].timeline
            return len([e for e in timeline if e["type"] == str(STATUS)])

        count = statuses()
        h.clock.advance(timedelta(seconds=61))
        await h.run_jobs()
        assert statuses() == count
        # Anna closes one of hers: the partner's citizen is next.
        await h.cases.close_case(mine[0], by=ANNA)
        await h.run_jobs()
        assert await state(h, case) == "live"
        assert written(h, room_id, STATUS) == {"state": "live"}
        assert h.hs.rooms[room_id].members[ANNA] == "invite"


async def test_our_hours_ending_while_the_partners_citizen_waits_give_it_back(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        await annas_three_cases(h)
        room_id = await county_hands_over(h, "buergerbuero")
        case = await h.store.case_by_room(room_id)
        assert case is not None and case.state == "queued"
        h.clock.advance(timedelta(hours=2, minutes=5))  # 12:05 in Kirchheim
        assert h.cases.router is not None
        await h.cases.router.drain()
        await h.run_jobs()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.state == "closed"
        closed = written(h, room_id, CLOSED)
        assert closed["returned"] is True
        assert "Sprechzeit von Bürgerbüro zu Ende" in closed["reason"]
        kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert Kind.QUEUE_CLOSED in kinds and Kind.HANDED_BACK in kinds
        # Our bot stays: our record of the case is in this room; but what the
        # citizen now writes to the town is no longer ours to record.
        assert h.hs.rooms[room_id].members[h.config.bot_mxid] == "join"
        before = len(await h.timeline(case))
        await h.deliver(
            {
                "type": "m.room.message",
                "room_id": room_id,
                "sender": COUNTY_CITIZEN,
                "content": {"msgtype": "m.text", "body": "Hallo Stadt?"},
            }
        )
        assert len(await h.timeline(case)) == before


async def hours_end_before_our_answer(h: Harness) -> tuple[Case, str, Any]:
    """Anna busy, a hand-over at 11:55 whose answer Synapse refuses, the
    desk's hours over at 12:05: the case waits, closed in, unanswered. Returns
    it, its room and the intent's real send_state_event (to mend it)."""
    await annas_three_cases(h)
    h.clock.advance(timedelta(hours=1, minutes=55))
    intent = h.az.intent
    send = intent.send_state_event

    async def refused(room_id: str, kind: Any, *args: Any, **kw: Any) -> Any:
        if str(kind) == str(ANSWER):
            raise ClientConnectionError("Synapse does not answer")
        return await send(room_id, kind, *args, **kw)

    intent.send_state_event = refused
    room_id = await county_hands_over(h, "buergerbuero")
    case = await h.store.case_by_room(room_id)
    assert case is not None and case.state == "queued"
    assert not written(h, room_id, ANSWER)
    h.clock.advance(timedelta(minutes=10))
    assert h.cases.router is not None
    await h.cases.router.drain()
    await h.run_jobs()
    kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
    assert Kind.QUEUE_CLOSED in kinds, kinds
    return case, room_id, send


async def test_a_case_closed_in_before_our_answer_goes_back_only_after_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id, send = await hours_end_before_our_answer(h)
        # Not given back before the partner has our answer: it would be
        # handed over there to a case closed here.
        assert await state(h, case) == "queued"
        assert not written(h, room_id, CLOSED)
        h.az.intent.send_state_event = send  # Synapse answers again
        for _ in range(4):
            h.clock.advance(timedelta(seconds=61))
            await h.run_jobs()
        assert written(h, room_id, ANSWER)["accepted"] is True
        assert await state(h, case) == "closed"
        assert written(h, room_id, CLOSED)["returned"] is True
        kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert kinds.index(Kind.HANDOVER_RECEIVED) < kinds.index(Kind.HANDED_BACK)


async def test_a_case_closed_in_and_never_answered_is_closed_quietly(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        case, room_id, _ = await hours_end_before_our_answer(h)
        # The partner stops waiting for our answer after ANSWER_WITHIN (and
        # takes the case back itself); so do we.
        for _ in range(4):
            h.clock.advance(timedelta(minutes=2))
            await h.run_jobs()
        assert await state(h, case) == "closed"
        kinds = [e.kind for e in await h.cases.lifecycle.history(case.case_id)]
        assert Kind.HANDED_BACK not in kinds and Kind.HANDOVER_RECEIVED not in kinds
        assert not written(h, room_id, ANSWER)
        assert written(h, room_id, CLOSED).get("returned") is not True


async def test_a_department_with_nobody_online_passes_it_to_its_fallback(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, change=with_county) as h:
        h.hs.presence["@bernd.keller:buergerchat.localhost"] = "offline"
        room_id = await county_hands_over(h, "bauen")
        answer = written(h, room_id, ANSWER)
        assert answer["accepted"] is True and answer["department"] == "buergerbuero"
        case = await h.store.case_by_room(room_id)
        assert case is not None and case.department == "buergerbuero"
        assert h.hs.rooms[room_id].members[ANNA] == "invite"


async def test_outside_our_hours_the_hand_over_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path, change=with_county) as h:
        h.clock.advance(timedelta(hours=3))  # 13:00: the Bürgerbüro is at lunch
        room_id = await county_hands_over(h, "buergerbuero")
        answer = written(h, room_id, ANSWER)
        assert answer["accepted"] is False
        assert "keine Sprechzeit" in answer["reason"]
        assert await h.store.case_by_room(room_id) is None
        assert h.hs.rooms[room_id].members[h.config.bot_mxid] == "leave"
