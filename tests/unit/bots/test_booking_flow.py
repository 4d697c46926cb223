"""The virtual citizen office end to end below the e2e layer (real core and
bots, fake homeserver, pinned clock): booking through the API opens a case in
state ``booked`` with its room, notices, a mail with an ``.ics`` and a personal
link; the waiting room refuses too early and counts places; ``!next`` pulls the
first one into a call and moves the others up; cancel frees the time; reminders
and the no-show fire at their times; walk-ins; the bad inputs."""

from __future__ import annotations

import asyncio
import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from bridge.booking import Bookings
from bridge.db.models import Appointment, AppointmentHold, Case
from bridge.tokens import token_hash
from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"
#: Tuesday 24 November 2026, 10:00 in Berlin; video hours there 14:00–16:00.
TUESDAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TWO_PM = "2026-11-24T14:00:00+01:00"
HALF_PAST_TWO = "2026-11-24T14:30:00+01:00"


def unlimited(data: dict[str, Any]) -> None:
    """Many bookings from the test's one address (the limits have their own
    test below)."""
    data["limits"].update(
        bookings_per_address="1000/minute",
        bookings_total="1000/minute",
        confirmations_per_recipient="1000/day",
    )


def booking(n: int | str = 1, start: str = TWO_PM, **changes: Any) -> dict[str, Any]:
    body = {
        "department": "buergerbuero",
        "services": ["personalausweis"],
        "start": start,
        "name": "Erika Muster",
        "email": f"erika{n}@example.org",
        "phone": "+49 7205 1234",
        "consent": True,
        "language": "de",
        "client_id": f"book-{n}",
    }
    body.update(changes)
    return body


async def book(h: Harness, client: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/appointments", json=body)
    answer = await resp.json()
    assert resp.status == 201, answer
    return dict(answer)


async def mail_of(h: Harness, key: str) -> email.message.EmailMessage:
    row = await h.ctx.mail.get(key)
    assert row is not None, f"no mail {key}"
    return email.message_from_bytes(row.raw, policy=policy.default)  # type: ignore[return-value]


def body_text(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def appointment_of(h: Harness, case_id: str) -> Appointment:
    found = await Bookings(h.store.engine).of_case(case_id)
    assert found is not None
    return found


async def case_of(h: Harness, case_id: str) -> Case:
    case = await h.store.get_case(case_id)
    assert case is not None
    return case


async def start_booked(tmp_path: Path, **kw: Any) -> Any:
    return harness(tmp_path, start=TUESDAY, change=unlimited, **kw)


async def enter_at_1355(h: Harness, client: Any, answer: dict[str, Any]) -> None:
    """At 13:55, five minutes before the 14:00 appointment, into its waiting room."""
    h.clock.advance(hours=3, minutes=55)
    auth = {"Authorization": f"Bearer {answer['token']}"}
    room = f"/api/v1/cases/{answer['case_id']}/waiting-room"
    assert (await client.post(room, headers=auth)).status == 200


def notices(h: Harness, room_id: str) -> list[str]:
    return [c["body"] for c in h.hs.messages(room_id) if c.get("msgtype") == "m.notice"]


async def test_a_booking_opens_a_case_with_room_notices_and_a_mail(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        assert answer["state"] == "booked"
        assert answer["start"] == TWO_PM
        assert answer["end"] == "2026-11-24T14:20:00+01:00"
        case = await case_of(h, answer["case_id"])
        assert case.state == "booked" and case.citizen_name == "Erika Muster"
        # The room has the staff member who takes it, and what they need.
        assert case.room_id and h.hs.rooms[case.room_id].members[ANNA] == "invite"
        room = "\n".join(notices(h, case.room_id))
        for expected in ("Personalausweis beantragen", "erika1@example.org", "14:20"):
            assert expected in room
        # The team room heard of it with the time.
        team = h.hs.room_of_alias("team-buergerbuero")
        assert any("Videotermin" in n for n in notices(h, team.room_id))
        # The citizen's timeline says booked; the mail has the .ics and link.
        lines = await h.system_lines(case)
        assert any("Ihr Videotermin ist gebucht" in line for line in lines)
        mail = await mail_of(h, f"appt-booked:{answer['appointment_id']}")
        assert mail["To"] == "erika1@example.org"
        assert "Erika" not in mail.as_string()  # nothing typed goes out
        text = body_text(mail)
        assert "24.11.2026, 14:00 Uhr" in text
        assert "biometrisches Passfoto" in text
        link = next(w for w in text.split() if "#bc-resume=" in w)
        ics = next(
            p for p in mail.iter_attachments() if p.get_filename() == "termin.ics"
        )
        event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
        assert event.decoded("dtstart") == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
        assert event.decoded("dtend") == datetime(2026, 11, 24, 13, 20, tzinfo=UTC)
        assert str(event["url"]) == link
        # The personal link buys a chat token for this case.
        case_id, _, token = link.split("#bc-resume=")[1].partition(".")
        resp = await client.post(
            f"/api/v1/cases/{case_id}/resume",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 200, await resp.text()
        # The chat token shows the appointment.
        resp = await client.get(
            f"/api/v1/cases/{case_id}/appointment",
            headers={"Authorization": f"Bearer {answer['token']}"},
        )
        shown = await resp.json()
        assert shown["state"] == "booked"
        assert shown["waiting_room_opens_at"] == "2026-11-24T13:50:00+01:00"
        assert shown["services"][0]["prepare"].startswith("Ihren bisherigen")


async def test_the_same_request_twice_is_one_booking(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        first = await book(h, client, booking())
        again = await book(h, client, booking())
        assert again["appointment_id"] == first["appointment_id"]
        assert again["case_id"] == first["case_id"]
        assert again["token"] != first["token"]  # both valid
        async with h.store.session() as s:
            from sqlalchemy import func, select

            assert await s.scalar(select(func.count()).select_from(Case)) == 1


async def test_twenty_at_once_for_one_slot_one_wins(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answers = await asyncio.gather(
            *(client.post("/api/v1/appointments", json=booking(n)) for n in range(20))
        )
        statuses = sorted(r.status for r in answers)
        assert statuses == [201] + [409] * 19
        taken = [await r.json() for r in answers if r.status == 409]
        assert {t["errcode"] for t in taken} == {"BC_SLOT_TAKEN"}
        async with h.store.session() as s:
            from sqlalchemy import func, select

            assert await s.scalar(select(func.count()).select_from(Case)) == 1
        # The slot is gone from the offer; the next one is still there.
        resp = await client.get(
            "/api/v1/appointments/slots?department=buergerbuero"
            "&services=personalausweis&from=2026-11-24&days=1"
        )
        starts = [s["start"] for s in (await resp.json())["slots"]]
        assert TWO_PM not in starts and HALF_PAST_TWO in starts


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "2026-11-24T14:07:00+01:00"}, "start"),
        ({"start": "2026-11-24T09:00:00+01:00"}, "start"),
        ({"start": "morgen"}, "start"),
        ({"start": "2026-11-24T14:00:00"}, "start"),
        ({"start": "9999-12-31T23:00:00-05:00"}, "start"),
        ({"start": "0001-01-01T00:00:00+00:00"}, "start"),
        ({"services": ["gibtsnicht"]}, "services"),
        ({"services": []}, "services"),
        ({"services": "x" * 5000}, "services"),
        ({"department": "bauen"}, "department"),
        ({"department": "nirgends"}, "department"),
        ({"email": "erika@web"}, "email"),
        ({"email": None}, "email"),
        ({"name": ""}, "name"),
        ({"phone": "abc"}, "phone"),
        ({"language": "xx"}, "language"),
        ({"consent": False}, "consent"),
        ({"client_id": None}, "client_id"),
    ],
)
async def test_bad_bookings_are_told_what_to_fix(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        resp = await client.post("/api/v1/appointments", json=booking(**change))
        answer = await resp.json()
        assert resp.status == 400, answer
        assert answer["field"] == field and answer["error"]
        assert await Bookings(h.store.engine).by_client_id("book-1") is None


async def post_at(client: Any, n: int, at: str, mail: str) -> Any:
    body = booking(n, start=f"2026-11-24T{at}:00+01:00", email=mail)
    return await client.post("/api/v1/appointments", json=body)


async def test_bookings_from_one_address_are_limited(tmp_path: Path) -> None:
    async with harness(tmp_path, start=TUESDAY) as h, h.api() as client:
        for n, at in enumerate(("14:00", "14:30", "15:00")):
            assert (await post_at(client, n, at, f"e{n}@example.org")).status == 201
        resp = await post_at(client, 3, "15:30", "e3@example.org")
        refused = await resp.json()
        assert resp.status == 429 and refused["limit"] == "bookings_per_address"
        assert await Bookings(h.store.engine).by_client_id("book-3") is None


async def test_one_mailbox_gets_three_confirmations_a_day(tmp_path: Path) -> None:
    def many_per_address(data: dict[str, Any]) -> None:
        data["limits"].update(bookings_per_address="1000/minute")

    async with harness(tmp_path, start=TUESDAY, change=many_per_address) as h:
        async with h.api() as client:
            for n, at in enumerate(("14:00", "14:30", "15:00")):
                resp = await post_at(client, n, at, "Same@example.org")
                assert resp.status == 201
            resp = await post_at(client, 3, "15:30", "same@example.org")
            refused = await resp.json()
            assert resp.status == 429
            assert refused["limit"] == "confirmations_per_recipient"
            assert await Bookings(h.store.engine).by_client_id("book-3") is None
            assert (await post_at(client, 4, "15:30", "o@example.org")).status == 201


async def test_waiting_room_next_and_places(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        first = await book(h, client, booking(1))
        second = await book(h, client, booking(2, start=HALF_PAST_TWO))
        auth1 = {"Authorization": f"Bearer {first['token']}"}
        auth2 = {"Authorization": f"Bearer {second['token']}"}
        room = f"/api/v1/cases/{first['case_id']}/waiting-room"
        resp = await client.post(room, headers=auth1)
        too_early = await resp.json()
        assert resp.status == 425 and too_early["errcode"] == "BC_TOO_EARLY"
        assert too_early["opens_at"] == "2026-11-24T13:50:00+01:00"
        h.clock.advance(hours=3, minutes=52)  # 13:52 in Berlin
        resp = await client.post(room, headers=auth1)
        place = await resp.json()
        assert resp.status == 200, place
        assert place["position"] == 1
        assert place["expected_start"] == TWO_PM
        assert (await case_of(h, first["case_id"])).state == "waiting"
        # Again (a second tab): the same place, nothing new.
        assert (await (await client.post(room, headers=auth1)).json())["position"] == 1
        # The second opens only at 14:20.
        second_room = f"/api/v1/cases/{second['case_id']}/waiting-room"
        assert (await client.post(second_room, headers=auth2)).status == 425
        h.clock.advance(minutes=30)  # 14:22: both wait, the first's time is past
        resp = await client.post(second_room, headers=auth2)
        assert (await resp.json())["position"] == 2
        # Anna pulls the first one in.
        case1 = await case_of(h, first["case_id"])
        await h.staff_says(case1, ANNA, "!next")
        case1 = await case_of(h, first["case_id"])
        assert case1.state == "in_call"
        timeline = await h.timeline(case1)
        kinds = [e.get("kind") for e in timeline if e["type"] == "system"]
        assert "video_started" in kinds and "called" in kinds
        called = next(e for e in timeline if e.get("kind") == "called")
        assert called["video"]["join"] == f"/api/v1/cases/{case1.case_id}/video"
        assert any(
            e["type"] == "im.vector.modular.widgets"
            for e in h.hs.rooms[case1.room_id or ""].timeline
        )
        resp = await client.get(f"/api/v1/cases/{case1.case_id}/video", headers=auth1)
        assert resp.status == 200
        # Anna is in that call: another !next pulls in nobody else.
        await h.staff_says(case1, ANNA, "!next")
        assert (await case_of(h, second["case_id"])).state == "waiting"
        replies = notices(h, case1.room_id or "")
        assert any("noch im Gespräch" in n for n in replies)
        # The second moved up and was told so.
        case2 = await case_of(h, second["case_id"])
        waiting = [e for e in await h.timeline(case2) if e.get("kind") == "waiting"]
        assert [w["position"] for w in waiting] == [2, 1]
        # The call ends: the case goes on as a chat; the next !next takes the second.
        await h.staff_says(case1, ANNA, "!video end")
        assert (await case_of(h, first["case_id"])).state == "live"
        assert (await appointment_of(h, first["case_id"])).ended_at is not None
        await h.staff_says(case1, ANNA, "!next")
        assert (await case_of(h, second["case_id"])).state == "in_call"
        case2 = await case_of(h, second["case_id"])
        await h.staff_says(case2, ANNA, "!video end")
        await h.staff_says(case2, ANNA, "!next")
        replies = notices(h, case2.room_id or "")
        assert any("Gerade wartet niemand" in n for n in replies)


async def test_cancel_frees_the_time_and_mails(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        other = await book(h, client, booking(2, start=HALF_PAST_TWO))
        url = f"/api/v1/appointments/{answer['appointment_id']}"
        # Another case's token cannot cancel it; nor none.
        resp = await client.delete(
            url, headers={"Authorization": f"Bearer {other['token']}"}
        )
        assert resp.status == 403
        assert (await client.delete(url)).status == 401
        auth = {"Authorization": f"Bearer {answer['token']}"}
        resp = await client.delete(url, headers=auth)
        assert resp.status == 200, await resp.text()
        case = await case_of(h, answer["case_id"])
        assert case.closed_at is not None
        appointment = await appointment_of(h, answer["case_id"])
        assert appointment.state == "cancelled"
        async with h.store.session() as s:
            from sqlalchemy import func, select

            holds = await s.scalar(
                select(func.count())
                .select_from(AppointmentHold)
                .where(AppointmentHold.appointment_id == answer["appointment_id"])
            )
        assert holds == 0
        mail = await mail_of(h, f"appt-cancelled:{answer['appointment_id']}")
        ics = next(p for p in mail.iter_attachments())
        calendar = Calendar.from_ical(ics.get_content())
        assert str(calendar["method"]) == "CANCEL"
        assert "#bc-resume=" not in body_text(mail)
        # The time can be booked again; cancelling twice is refused.
        again = await book(h, client, booking(3))
        assert again["start"] == TWO_PM
        assert (await client.delete(url, headers=auth)).status in (401, 409)
        assert "abgesagt" in " ".join(await h.system_lines(case))


async def test_reminders_then_no_show(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        thursday = "2026-11-26T14:00:00+01:00"
        answer = await book(h, client, booking(start=thursday))
        key = answer["appointment_id"]
        assert await h.ctx.mail.get(f"appt-reminder:{key}:1440") is None
        h.clock.advance(days=1, hours=4)  # Wednesday 14:00
        await h.run_jobs()
        day_before = await mail_of(h, f"appt-reminder:{key}:1440")
        assert "Erinnerung" in day_before["Subject"]
        assert "#bc-resume=" in body_text(day_before)
        assert await h.ctx.mail.get(f"appt-reminder:{key}:60") is None
        h.clock.advance(hours=23)  # Thursday 13:00
        await h.run_jobs()
        assert await h.ctx.mail.get(f"appt-reminder:{key}:60") is not None
        h.clock.advance(minutes=74)  # 14:14: not a no-show yet
        await h.run_jobs()
        assert (await case_of(h, answer["case_id"])).state == "booked"
        h.clock.advance(minutes=1)  # 14:15
        await h.run_jobs()
        case = await case_of(h, answer["case_id"])
        assert case.state == "closed"
        appointment = await appointment_of(h, answer["case_id"])
        assert appointment.state == "no_show" and appointment.no_show_at is not None
        missed = await mail_of(h, f"appt-no_show:{key}")
        assert "Verpasst" in missed["Subject"]
        assert any(
            "nicht erschienen" in n.lower() for n in notices(h, case.room_id or "")
        )
        assert any("verfallen" in line for line in await h.system_lines(case))


async def test_a_cancelled_appointment_gets_no_reminder_and_no_no_show(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking(start="2026-11-26T14:00:00+01:00"))
        auth = {"Authorization": f"Bearer {answer['token']}"}
        url = f"/api/v1/appointments/{answer['appointment_id']}"
        assert (await client.delete(url, headers=auth)).status == 200
        h.clock.advance(days=3)
        await h.run_jobs()
        key = answer["appointment_id"]
        assert await h.ctx.mail.get(f"appt-reminder:{key}:1440") is None
        assert await h.ctx.mail.get(f"appt-no_show:{key}") is None


async def test_an_arrived_citizen_is_no_no_show(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await enter_at_1355(h, client, answer)
        h.clock.advance(minutes=30)
        await h.run_jobs()
        assert (await case_of(h, answer["case_id"])).state == "waiting"


async def test_walk_in_when_someone_is_free(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        offer = "/api/v1/walk-ins?department=buergerbuero&services=meldebescheinigung"
        # 10:00: no video hours; the next bookable slot is offered instead.
        chance = await (await client.get(offer)).json()
        assert chance["available"] is False and chance["next_slot"]
        body = booking("w", services=["meldebescheinigung"])
        del body["start"], body["email"]
        resp = await client.post("/api/v1/walk-ins", json=body)
        refused = await resp.json()
        assert resp.status == 409 and refused["errcode"] == "BC_NO_WALK_IN"
        assert refused["next_slot"]
        h.clock.advance(hours=4, minutes=3)  # 14:03
        chance = await (await client.get(offer)).json()
        assert chance == {
            "available": True,
            "expected_start": TWO_PM,
            "wait_minutes": 0,
            "next_slot": None,
        }
        resp = await client.post("/api/v1/walk-ins", json=body)
        walked = await resp.json()
        assert resp.status == 201, walked
        assert walked["state"] == "waiting"
        assert walked["waiting"]["position"] == 1
        assert (await case_of(h, walked["case_id"])).state == "waiting"
        # Anna is taken 14:00–14:10 plus buffer: the next walk-in waits till 14:15.
        body2 = dict(body, client_id="walk-2")
        second = await (await client.post("/api/v1/walk-ins", json=body2)).json()
        assert second["start"] == "2026-11-24T14:15:00+01:00"
        assert second["waiting"]["position"] == 2


async def test_a_crash_between_booking_and_case_is_settled_by_the_sweep(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h:
        bookings = Bookings(h.store.engine)
        start = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
        # The booking was written; the process died before its case existed.
        orphan = await bookings.book(
            department="buergerbuero",
            services=["personalausweis"],
            start=start,
            end=start + timedelta(minutes=20),
            buffer_minutes=5,
            staff=(ANNA,),
            client_id="crashed",
            name="Erika Muster",
            email="erika@example.org",
            language="de",
        )
        assert orphan is not None and orphan.case_id is None
        await h.start("booking")
        await h.run_jobs()
        assert (await bookings.get(orphan.appointment_id)).case_id is None  # type: ignore[union-attr]
        h.clock.advance(minutes=2)
        await h.run_jobs()
        settled = await bookings.get(orphan.appointment_id)
        assert settled is not None and settled.case_id is not None
        assert (await case_of(h, settled.case_id)).state == "booked"
        assert await h.ctx.mail.get(f"appt-booked:{orphan.appointment_id}") is not None
        h.clock.advance(minutes=2)
        await h.run_jobs()  # settled once: one case, one mail
        async with h.store.session() as s:
            from sqlalchemy import func, select

            assert await s.scalar(select(func.count()).select_from(Case)) == 1


async def test_staff_closing_a_booked_case_frees_its_time(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!transfer bauen")
        assert any("nicht weitergeben" in n for n in notices(h, case.room_id or ""))
        assert (await case_of(h, answer["case_id"])).department == "buergerbuero"
        await h.staff_says(case, ANNA, "!close")
        appointment = await appointment_of(h, answer["case_id"])
        assert appointment.state == "cancelled"
        # The citizen's calendar loses the entry: the cancellation with its .ics.
        mail = await mail_of(h, f"appt-cancelled:{answer['appointment_id']}")
        ics = next(p for p in mail.iter_attachments())
        assert str(Calendar.from_ical(ics.get_content())["method"]) == "CANCEL"
        again = await book(h, client, booking(2))
        assert again["start"] == TWO_PM


async def test_erasing_the_case_takes_the_appointment(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await h.privacy.purge(answer["case_id"], "erasure", "test")
        bookings = Bookings(h.store.engine)
        assert await bookings.get(answer["appointment_id"]) is None
        assert await h.ctx.mail.get(f"appt-booked:{answer['appointment_id']}") is None
        async with h.store.session() as s:
            from sqlalchemy import func, select

            assert (
                await s.scalar(select(func.count()).select_from(AppointmentHold)) == 0
            )


async def test_calendar_feed_by_direct_message_and_the_morning_notice(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!calendar")
        # The link went to a direct message, not into the case room.
        room_notices = notices(h, case.room_id or "")
        assert any("Direktnachricht" in n for n in room_notices)
        assert not any("/api/v1/calendar/" in n for n in room_notices)
        direct = [
            r
            for r in h.hs.rooms.values()
            if r.alias and "calendar_" in r.alias and r.members.get(ANNA) == "invite"
        ]
        assert len(direct) == 1
        text = " ".join(notices(h, direct[0].room_id))
        url = next(w for w in text.split() if "/api/v1/calendar/" in w)
        path = url[url.index("/api/v1/calendar/") :]
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == "text/calendar"
        feed = Calendar.from_ical(await resp.read())
        events = feed.walk("VEVENT")
        assert len(events) == 1
        assert case.reference in str(events[0]["summary"])
        assert "Erika" not in (await resp.read()).decode()  # no citizen's name
        # A new !calendar makes the old link invalid; a wrong one is a 404.
        await h.staff_says(case, ANNA, "!calendar")
        assert (await client.get(path)).status == 404
        assert (await client.get("/api/v1/calendar/nonsense.ics")).status == 404
        # Wednesday 07:30: nothing; Thursday's appointment is in Thursday's notice.
        thursday = await book(h, client, booking(2, start="2026-11-26T15:00:00+01:00"))
        await h.start("booking")
        team = h.hs.room_of_alias("team-buergerbuero")
        before = len(notices(h, team.room_id))
        h.clock.advance(days=1, hours=-1, minutes=-30)  # Wednesday 07:30
        await h.run_jobs()
        assert len(notices(h, team.room_id)) == before
        h.clock.advance(days=1)  # Thursday 07:30
        await h.run_jobs()
        morning = notices(h, team.room_id)[-1]
        assert "Videotermine heute, 26.11.2026" in morning
        assert "Anna Schmidt" in morning and "15:00–15:20" in morning
        assert (await case_of(h, thursday["case_id"])).reference in morning


async def test_invite_guest_gives_a_link_into_the_running_call(tmp_path: Path) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!invite-guest Dolmetscherin")
        assert any("kein Gespräch" in n for n in notices(h, case.room_id or ""))
        await enter_at_1355(h, client, answer)
        await h.staff_says(case, ANNA, "!next")
        await h.staff_says(case, ANNA, "!invite-guest Dolmetscherin")
        told = notices(h, case.room_id or "")
        link = next(n for n in told if "Persönlicher Link" in n)
        assert "bis 24.11.2026 15:20" in link  # an hour after the planned end
        lines = await h.system_lines(case)
        assert any("weitere Person" in line for line in lines)
        history = [e.kind.value for e in await h.cases.lifecycle.history(case.case_id)]
        assert history[-2:] == ["called", "guest_invited"]


async def test_next_worked_off_again_pulls_in_one_citizen_only(
    tmp_path: Path,
) -> None:
    """The appservice retries a transaction whose !next broke off after the
    move: the retry finishes that call and does not pull in the next one."""
    async with await start_booked(tmp_path) as h, h.api() as client:
        first = await book(h, client, booking(1))
        second = await book(h, client, booking(2, start=HALF_PAST_TWO))
        h.clock.advance(hours=4, minutes=22)
        for answer in (first, second):
            auth = {"Authorization": f"Bearer {answer['token']}"}
            url = f"/api/v1/cases/{answer['case_id']}/waiting-room"
            assert (await client.post(url, headers=auth)).status == 200
        case1 = await case_of(h, first["case_id"])
        real = h.bots["booking"].visits._call
        broke: list[int] = []

        async def breaks_once(*args: Any) -> Any:
            if not broke:
                broke.append(1)
                raise RuntimeError("lost the database")
            return await real(*args)

        h.bots["booking"].visits._call = breaks_once
        raw = {
            "type": "m.room.message",
            "room_id": case1.room_id,
            "sender": ANNA,
            "event_id": "$next-once",
            "content": {"msgtype": "m.text", "body": "!next"},
        }
        await h.deliver(dict(raw))  # the command router logs the failure
        await h.deliver(dict(raw))
        assert (await case_of(h, first["case_id"])).state == "in_call"
        assert (await case_of(h, second["case_id"])).state == "waiting"
        timeline = await h.timeline(case1)
        assert [e.get("kind") for e in timeline].count("called") == 1


def test_timers_follow_the_towns_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """With BUERGERCHAT_NOW the town's clock is shifted: a reminder for 14:00 of
    that day fires when the shifted clock shows 14:00."""
    from bridge.clock import real_time, routing_now, utcnow

    monkeypatch.setenv("BUERGERCHAT_NOW", "2026-11-19T10:00:00+01:00")
    town, real = routing_now(), utcnow()
    later = town + timedelta(hours=4)
    assert abs((real_time(later) - (real + timedelta(hours=4))).total_seconds()) < 1


def link_token(link: str) -> str:
    """The token of a personal link ``…#bc-resume=<case_id>.<token>&…``."""
    return link.split("#bc-resume=")[1].split("&")[0].split(".", 1)[1]


def double_opt_in(data: dict[str, Any]) -> None:
    unlimited(data)
    data.setdefault("booking", {})["double_opt_in"] = True
    data["booking"]["confirm_within_minutes"] = 30


async def test_double_opt_in_holds_the_time_until_confirmed(tmp_path: Path) -> None:
    async with harness(tmp_path, start=TUESDAY, change=double_opt_in) as h:
        async with h.api() as client:
            answer = await book(h, client, booking())
            assert answer["state"] == "pending_confirmation"
            key = answer["appointment_id"]
            # The time is held: nobody else gets it meanwhile.
            resp = await client.post("/api/v1/appointments", json=booking(2))
            assert resp.status == 409
            # A first mail asks for confirmation: no .ics, no reminders yet.
            ask = await mail_of(h, f"appt-confirm:{key}")
            assert "Bitte bestätigen" in ask["Subject"]
            assert not list(ask.iter_attachments())
            assert await h.ctx.mail.get(f"appt-booked:{key}") is None
            link = next(w for w in body_text(ask).split() if "#bc-resume=" in w)
            assert link.endswith(f"&bc-confirm={key}")
            # The waiting room is not for unconfirmed appointments.
            auth = {"Authorization": f"Bearer {answer['token']}"}
            mailed = {"Authorization": f"Bearer {link_token(link)}"}
            h.clock.advance(hours=3, minutes=55)
            room = f"/api/v1/cases/{answer['case_id']}/waiting-room"
            assert (await client.post(room, headers=auth)).status == 409
            h.clock.advance(hours=-3, minutes=-55)
            # The booking's own token does not confirm: only the mailed link.
            url = f"/api/v1/appointments/{key}/confirm"
            assert (await client.post(url, headers=auth)).status == 401
            # Confirmed (twice: one answer): the booking's mail with .ics follows.
            for _ in range(2):
                resp = await client.post(url, headers=mailed)
                assert (await resp.json())["state"] == "booked"
            booked = await mail_of(h, f"appt-booked:{key}")
            assert any(
                p.get_filename() == "termin.ics" for p in booked.iter_attachments()
            )
            # Confirmed in time: the expiry does nothing.
            h.clock.advance(minutes=31)
            await h.run_jobs()
            assert (await appointment_of(h, answer["case_id"])).state == "booked"


async def test_unconfirmed_bookings_free_their_time(tmp_path: Path) -> None:
    async with harness(tmp_path, start=TUESDAY, change=double_opt_in) as h:
        async with h.api() as client:
            answer = await book(h, client, booking())
            h.clock.advance(minutes=29)
            await h.run_jobs()
            assert (await appointment_of(h, answer["case_id"])).state == "pending"
            h.clock.advance(minutes=1)
            await h.run_jobs()
            appointment = await appointment_of(h, answer["case_id"])
            assert appointment.state == "expired"
            case = await case_of(h, answer["case_id"])
            assert case.closed_at is not None
            assert any("nicht bestätigt" in line for line in await h.system_lines(case))
            # Too late to confirm (the link's token outlived it here); the time
            # can be booked again.
            ask = await mail_of(h, f"appt-confirm:{answer['appointment_id']}")
            link = next(w for w in body_text(ask).split() if "#bc-resume=" in w)
            token = link_token(link)
            await h.cases.tokens.store.extend_token(
                token_hash(token), h.clock.now() + timedelta(hours=1)
            )
            url = f"/api/v1/appointments/{answer['appointment_id']}/confirm"
            late = {"Authorization": f"Bearer {token}"}
            assert (await client.post(url, headers=late)).status == 409
            assert (await book(h, client, booking(2)))["start"] == TWO_PM


async def test_the_visit_is_in_the_archived_transcript(tmp_path: Path) -> None:
    """Booking, arrival, the call and its end are in the case's records and in
    the PDF archived when it closes."""
    import io

    from pypdf import PdfReader

    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await enter_at_1355(h, client, answer)
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!next")
        await h.staff_says(case, ANNA, "!video end")
        await h.staff_says(case, ANNA, "!close")
        h.clock.advance(minutes=1)
        await h.run_jobs()
        kinds = [e.kind.value for e in await h.cases.lifecycle.history(case.case_id)]
        assert kinds == ["opened", "arrived", "called", "call_ended", "closed"]
        archive = h.config.plugin("transcripts").archive_dir / f"{case.reference}.pdf"
        reader = PdfReader(io.BytesIO(archive.read_bytes()))
        text = " ".join((page.extract_text() or "") for page in reader.pages)
        text = " ".join(text.split())
        for line in (
            "Ihr Videotermin ist gebucht",
            "Sie sind im Warteraum",
            "holt Sie jetzt in das Videogespräch",
            "Videoberatung",
        ):
            assert line in text, (line, text[:2000])


async def test_a_persons_appointments_are_found_by_email_and_exported(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        found = await h.privacy.find_cases(email="ERIKA1@example.org")
        assert [c.case_id for c in found] == [answer["case_id"]]
        out = tmp_path / "export.zip"
        await h.privacy.export(found, out, "test", "request-1")
        import json
        import zipfile

        with zipfile.ZipFile(out) as z:
            data = [json.loads(z.read(n)) for n in z.namelist() if n.endswith(".json")]
        text = json.dumps(data)
        assert "erika1@example.org" in text and "+49 7205 1234" in text
        assert "personalausweis" in text


async def test_a_repeated_request_is_limited_checked_and_never_revives(
    tmp_path: Path,
) -> None:
    def one_a_minute(data: dict[str, Any]) -> None:
        double_opt_in(data)
        data["limits"].update(bookings_per_address="3/minute")

    async with harness(tmp_path, start=TUESDAY, change=one_a_minute) as h:
        async with h.api() as client:
            answer = await book(h, client, booking())
            # Asked differently under the same client_id: refused.
            other = booking(start=HALF_PAST_TWO)
            resp = await client.post("/api/v1/appointments", json=other)
            assert (await resp.json())["errcode"] == "BC_CLIENT_ID_REUSED"
            # Repeats count against the address like new requests.
            resp = await client.post("/api/v1/appointments", json=booking())
            assert resp.status == 201
            resp = await client.post("/api/v1/appointments", json=booking())
            assert resp.status == 429
            # Expired (never confirmed): a repeat does not mail the booking.
            h.clock.advance(minutes=31)
            await h.run_jobs()
            assert (await appointment_of(h, answer["case_id"])).state == "expired"
            await h.ctx.limits.limiter.storage.reset()
            resp = await client.post("/api/v1/appointments", json=booking())
            assert resp.status == 409
            key = answer["appointment_id"]
            assert await h.ctx.mail.get(f"appt-booked:{key}") is None


async def test_a_finished_call_is_activity_not_inactivity(tmp_path: Path) -> None:
    """A case booked at 10:00 whose call ends at 14:20 is not closed as
    inactive at the next routing tick; two quiet hours later it is."""
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await enter_at_1355(h, client, answer)
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!next")
        h.clock.advance(minutes=20)
        await h.staff_says(case, ANNA, "!video end")
        routing = h.bot("routing")
        await routing.close_inactive()
        assert (await case_of(h, answer["case_id"])).state == "live"
        h.clock.advance(hours=2, minutes=1)
        await routing.close_inactive()
        assert (await case_of(h, answer["case_id"])).state == "closed"


async def test_waiting_an_hour_past_the_end_is_not_waiting_forever(
    tmp_path: Path,
) -> None:
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await enter_at_1355(h, client, answer)
        h.clock.advance(minutes=84)  # 15:19: the appointment ended at 14:20
        await h.run_jobs()
        assert (await case_of(h, answer["case_id"])).state == "waiting"
        h.clock.advance(minutes=1)  # 15:20
        await h.run_jobs()
        case = await case_of(h, answer["case_id"])
        assert case.state == "closed"
        assert (await appointment_of(h, answer["case_id"])).state == "not_served"
        assert any("entschuldigen" in line for line in await h.system_lines(case))
        mail = await mail_of(h, f"appt-not_served:{answer['appointment_id']}")
        assert "konnte nicht stattfinden" in mail["Subject"]
        assert any("Nicht geholt" in n for n in notices(h, case.room_id or ""))


async def test_staff_in_a_call_get_no_chats_until_it_ends(tmp_path: Path) -> None:
    """Anna (the Bürgerbüro's one person) pulls a citizen into a call: a chat
    opened meanwhile waits in the queue (the status says busy) instead of
    going to her; after !video end it is routed to her."""
    async with await start_booked(tmp_path) as h, h.api() as client:
        answer = await book(h, client, booking())
        await enter_at_1355(h, client, answer)
        case = await case_of(h, answer["case_id"])
        await h.staff_says(case, ANNA, "!next")
        h.clock.advance(minutes=10)  # 14:05: the chat hours have begun
        router = h.cases.router
        assert router is not None
        router.forget_availability()  # type: ignore[attr-defined]
        status = await (await client.get("/api/v1/status")).json()
        office = next(d for d in status["departments"] if d["id"] == "buergerbuero")
        assert office["availability"]["state"] == "busy"
        chat, _ = await h.open_case("buergerbuero")
        assert chat.state == "queued"
        await h.staff_says(case, ANNA, "!video end")
        await router.drain()
        assert (await case_of(h, chat.case_id)).state == "live"
