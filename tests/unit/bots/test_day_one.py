"""What a citizen and staff meet on day one, in one process (tests/harness.py):
the status tells the truth per department and POST /cases does what it said;
presence nobody can see counts as offline; a fallback is said, never silent;
staff notes stay internal; topics read as labels. The e2e and Chromium tests
show the same against the real Synapse (tests/e2e/test_availability.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"


async def status_of(h: Harness, department: str) -> dict[str, Any]:
    h.bot("routing").dispatcher.forget_availability()
    async with h.api() as client:
        response = await client.get("/api/v1/status")
        assert response.status == 200
        body = await response.json()
    return dict(next(d for d in body["departments"] if d["id"] == department))


async def start_chat(h: Harness, department: str) -> tuple[int, dict[str, Any]]:
    async with h.api() as client:
        response = await client.post(
            "/api/v1/cases",
            json={"department": department, "consent": True, "topic": None},
        )
        return response.status, await response.json()


async def test_someone_free_is_available_and_the_chat_goes_live(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        office = await status_of(h, "buergerbuero")
        assert office["open"] and office["live"]
        assert office["availability"] == {
            "state": "available",
            "wait_minutes": None,
            "served_by": None,
        }
        status, body = await start_chat(h, "buergerbuero")
        assert (status, body["state"], body["served_by"]) == (201, "live", None)


async def test_everyone_online_at_their_limit_is_busy_with_a_wait(
    tmp_path: Path,
) -> None:
    """Anna takes 3 at once (max_cases_per_staff): the fourth would queue, and
    the status says so with the wait for the next place."""
    async with harness(tmp_path) as h:
        for _ in range(3):
            await h.open_case("buergerbuero")
        office = await status_of(h, "buergerbuero")
        assert office["live"] and office["availability"]["state"] == "busy"
        assert office["availability"]["wait_minutes"] >= 1
        status, body = await start_chat(h, "buergerbuero")
        assert (status, body["state"]) == (201, "queued")


async def test_nobody_online_in_office_hours_is_said_and_refused_alike(
    tmp_path: Path,
) -> None:
    """Within the hours, Anna offline (or her presence unknown: never logged in,
    not in a room with the bot): not live, "nobody_online", and POST /cases
    answers 409 with the same reason and no "next opening" (it is open)."""
    async with harness(tmp_path) as h:
        for presence in ("offline", None):
            if presence is None:
                h.hs.presence.pop(ANNA)  # Synapse answers 403: unknown
            else:
                h.hs.presence[ANNA] = presence
            office = await status_of(h, "buergerbuero")
            assert office["open"] and not office["live"]
            assert office["availability"]["state"] == "nobody_online"
            status, body = await start_chat(h, "buergerbuero")
            assert status == 409 and body["errcode"] == "BC_OFFLINE"
            assert (body["reason"], body["next_opening"]) == ("nobody_online", None)
        assert not await h.store.recent_cases(10)


async def test_outside_the_hours_is_closed_with_the_next_opening(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        h.clock.advance(hours=10)  # Tuesday 20:00 in Berlin
        office = await status_of(h, "buergerbuero")
        assert not office["open"] and not office["live"]
        assert office["availability"]["state"] == "closed"
        assert office["next_opening"].startswith("2026-11-25T08:00:00+01:00")
        status, body = await start_chat(h, "buergerbuero")
        assert (status, body["reason"]) == (409, "closed")
        assert body["next_opening"] == office["next_opening"]


async def test_a_fallback_is_said_before_and_after_starting(tmp_path: Path) -> None:
    """Bernd (Bauen) is offline; Bauen's fallback is the Bürgerbüro: the status
    names who helps instead, the created case says so, and its first line tells
    the citizen, in their language."""
    async with harness(tmp_path) as h:
        h.hs.presence[BERND] = "offline"
        bauen = await status_of(h, "bauen")
        assert bauen["live"] and bauen["availability"]["state"] == "available"
        assert bauen["availability"]["served_by"] == {
            "id": "buergerbuero",
            "name": "Bürgerbüro",
        }
        status, body = await start_chat(h, "bauen")
        assert status == 201 and body["department"] == "buergerbuero"
        assert body["requested_department"] == "bauen"
        assert body["served_by"] == {"id": "buergerbuero", "name": "Bürgerbüro"}
        case = await h.store.get_case(body["case_id"])
        assert case is not None
        assert (await h.system_lines(case))[0].startswith(
            "Bauen und Wohnen ist gerade nicht besetzt – Bürgerbüro hilft Ihnen weiter."
        )
        english, _ = await h.open_case("bauen", language="en")
        assert (await h.system_lines(english))[0].startswith(
            "Bauen und Wohnen is not staffed right now – Bürgerbüro will help you."
        )


async def test_notes_stay_internal_and_goodbye_reaches_the_citizen(
    tmp_path: Path,
) -> None:
    """The !close note is in the room and the case's events, never in the
    citizen's timeline; !goodbye's text is a staff message there, then closed."""
    async with harness(tmp_path) as h:
        first, _ = await h.open_case(topic="personalausweis")
        await h.staff_joins(first, ANNA)
        await h.staff_says(first, ANNA, "!close Kundin war unfreundlich")
        citizen = await h.timeline(first)
        assert not any("unfreundlich" in str(e) for e in citizen)
        assert citizen[-1]["kind"] == "closed"

        second, _ = await h.open_case(topic="personalausweis")
        await h.staff_joins(second, ANNA)
        await h.staff_says(second, ANNA, "!goodbye Ihr Ausweis liegt ab Montag bereit.")
        lines = await h.timeline(second)
        said = [e for e in lines if e["type"] == "message" and e["sender"] == "staff"]
        assert [e["body"] for e in said] == ["Ihr Ausweis liegt ab Montag bereit."]
        assert lines[-1]["kind"] == "closed"
        fresh = await h.store.get_case(second.case_id)
        assert fresh is not None and fresh.closed_at is not None
        # Worked off again (a crash before the inbox marked it done): said once.
        await h.staff_says(second, ANNA, "!goodbye Ihr Ausweis liegt ab Montag bereit.")
        again = await h.timeline(second)
        assert sum(e["type"] == "message" for e in again) == 1


async def test_topics_read_as_labels(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        case, token = await h.open_case(topic="personalausweis")
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        topic = h.hs.rooms[fresh.room_id].state[("m.room.topic", "")]["topic"]
        assert topic == f"Bürgerchat {case.reference} – Personalausweis und Reisepass"
        async with h.api() as client:
            response = await client.get(
                f"/api/v1/cases/{case.case_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            body = await response.json()
        assert body["topic"] == "personalausweis"
        assert body["topic_label"].startswith("Personalausweis")


async def test_status_is_kept_a_few_seconds_and_forgotten_on_change(
    tmp_path: Path,
) -> None:
    """Every widget asks: one answer serves them for a few seconds, and a new
    case makes the next answer fresh."""
    async with harness(tmp_path) as h:
        dispatcher = h.bot("routing").dispatcher
        first = await dispatcher.availability()
        h.hs.presence[ANNA] = "offline"
        assert await dispatcher.availability() is first
        h.hs.presence[ANNA] = "online"
        await h.open_case("buergerbuero")
        assert await dispatcher.availability() is not first
