"""Each bot's reactions to the case's events, in one process (tests/harness.py):
routing moves the queue when a case closes and tells the queue when live hours
end, the offline bot mails a staff answer once, the scanner takes a staff file
once, the video bot keeps its call in its own table, inactive cases close."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bots.scanner.models import Attachment
from bridge.mail.models import OutboxMail
from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"
CLARA = "@clara.wagner:buergerchat.localhost"


async def _fill(h: Harness, n: int) -> list[Any]:
    return [(await h.open_case())[0] for _ in range(n)]


async def test_a_close_moves_the_queue_at_once(tmp_path: Path) -> None:
    """Anna takes three cases; the fourth waits at place 1 and is told so in
    its language; closing one routes it (Kind.CLOSED → routing), no tick."""
    async with harness(tmp_path) as h:
        first, *_ = await _fill(h, 3)
        waiting, _ = await h.open_case(language="en")
        fresh = await h.store.get_case(waiting.case_id)
        assert fresh is not None and fresh.state == "queued"
        assert fresh.queue_position == 1 and fresh.queue_wait_minutes
        assert (await h.system_lines(waiting))[-1] == (
            "Everyone is busy. You are number 1 in the queue; estimated wait "
            f"about {fresh.queue_wait_minutes} minutes. You can write already."
        )
        await h.cases.close_case(first, by=ANNA)
        routed = await h.store.get_case(waiting.case_id)
        assert routed is not None and routed.state == "live"
        assert routed.invited == [ANNA] and routed.queue_position is None
        assert (await h.system_lines(waiting))[-1] == (
            "It is your turn: Bürgerbüro will be with you shortly."
        )


async def test_the_queue_is_told_when_live_hours_end(tmp_path: Path) -> None:
    """At 12:00 the Bürgerbüro closes: the routing tick offers the waiting
    citizen the offline form, once."""
    before_noon = datetime(2026, 11, 24, 10, 50, tzinfo=UTC)  # 11:50 in Berlin
    async with harness(tmp_path, start=before_noon) as h:
        await _fill(h, 3)
        waiting, _ = await h.open_case()
        h.clock.advance(minutes=11)
        await h.run_jobs()
        await h.run_jobs()
        fresh = await h.store.get_case(waiting.case_id)
        assert fresh is not None and fresh.queue_closed
        lines = await h.system_lines(waiting)
        assert lines[-1].startswith("Die Sprechzeit ist zu Ende")
        assert sum(line.startswith("Die Sprechzeit") for line in lines) == 1


async def test_an_idle_case_is_closed_by_the_tick(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        case, _ = await h.open_case()
        await h.cases.post_citizen_message(case, "m1", "Hallo?")
        minutes = h.config.routing.inactivity_close_minutes
        assert minutes > 0
        h.clock.advance(minutes=minutes - 1)
        await h.run_jobs()
        assert (await h.store.get_case(case.case_id)).closed_at is None  # type: ignore[union-attr]
        h.clock.advance(minutes=2)
        await h.run_jobs()
        closed = await h.store.get_case(case.case_id)
        assert closed is not None and closed.state == "closed"


async def test_a_staff_answer_to_an_offline_message_is_mailed_once(
    tmp_path: Path,
) -> None:
    """Saturday: the message becomes an offline case; a staff answer queues one
    notice mail with a personal link; the same answer worked off again (a
    replayed transaction) queues nothing more."""
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    async with harness(tmp_path, start=saturday) as h, h.api() as client:
        body = {
            "client_id": str(uuid.uuid4()),
            "topic": "personalausweis",
            "description": "Mein Ausweis ist abgelaufen.",
            "name": "Eva Muster",
            "email": "eva@example.org",
            "consent": True,
            "language": "en",
        }
        response = await client.post("/api/v1/offline-messages", json=body)
        assert response.status == 201, await response.text()
        answer = await response.json()
        case = await h.store.get_case(answer["case_id"])
        assert case is not None and case.state == "offline" and case.room_id
        assert (await h.system_lines(case))[-1].startswith(
            f"Your message has been received under {case.reference}."
        )
        event = {
            "event_id": "$answer1",
            "type": "m.room.message",
            "room_id": case.room_id,
            "sender": ANNA,
            "content": {"msgtype": "m.text", "body": "Bitte kommen Sie vorbei."},
        }
        await h.deliver(dict(event))
        await h.deliver(dict(event))
        async with h.store.session() as s:
            mails = list(await s.scalars(select(OutboxMail)))
        notices = [m for m in mails if m.dedup_key == "offline-answer:$answer1"]
        assert len(notices) == 1 and notices[0].recipients == ["eva@example.org"]


async def test_a_staff_file_is_taken_by_the_scanner_once(tmp_path: Path) -> None:
    """Kind.STAFF_FILE: the scanner records the file and fetches it; clamd is
    not running here, so it is held with a scan.held job — the citizen sees it
    announced as being checked, never as a download."""
    async with harness(tmp_path) as h:
        case, _ = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        uri = await h.hs.intent(ANNA).upload_media(b"%PDF-1.4 Bescheid")
        event = {
            "event_id": "$file1",
            "type": "m.room.message",
            "room_id": fresh.room_id,
            "sender": ANNA,
            "content": {
                "msgtype": "m.file",
                "body": "Bescheid.pdf",
                "url": str(uri),
                "info": {"mimetype": "application/pdf", "size": 17},
            },
        }
        await h.deliver(dict(event))
        await h.deliver(dict(event))
        async with h.store.session() as s:
            rows = list(
                await s.scalars(
                    select(Attachment).where(Attachment.case_id == case.case_id)
                )
            )
        assert [(r.filename, r.direction, r.sender) for r in rows] == [
            ("Bescheid.pdf", "staff", ANNA)
        ]
        assert rows[0].state == "pending" and rows[0].size == 17
        assert await h.jobs.get(f"scan:{rows[0].attachment_id}") is not None
        files = [e for e in await h.timeline(case) if e["type"] == "attachment"]
        assert [(f["body"], f["state"]) for f in files] == [
            ("Bescheid.pdf (wird geprüft)", "pending")
        ]


async def test_a_video_call_lives_in_its_own_table(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case(language="en")
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "!video")
        call = await h.bot("video").calls.running(case.case_id)
        assert call is not None and not call.audio_only
        room = await h.store.get_case(case.case_id)
        assert room is not None and room.room_id
        widgets = [k for k in h.hs.rooms[room.room_id].state if "widget" in k[0]]
        assert widgets, h.hs.rooms[room.room_id].state.keys()
        joined = await client.get(
            f"/api/v1/cases/{case.case_id}/video",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert joined.status == 200
        assert (await joined.json())["room"].endswith(call.conference_id)
        await h.staff_says(case, ANNA, "!video end")
        assert await h.bot("video").calls.running(case.case_id) is None
        lines = await h.system_lines(case)
        assert lines[-2:] == [
            "Anna Schmidt has started a video consultation.",
            "The video consultation was ended by Anna Schmidt.",
        ]
        gone = await client.get(
            f"/api/v1/cases/{case.case_id}/video",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert gone.status == 404
