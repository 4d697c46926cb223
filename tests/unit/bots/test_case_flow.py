"""A case's life through the core and the bots, in one process: the fake
homeserver stands in for Synapse, the fake clock for time (tests/harness.py).
What the e2e tests show against the real Synapse, here each reaction on its own
and in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.lifecycle import Kind
from tests.harness import harness

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"


async def test_a_live_case_gets_a_room_with_its_ghost_and_staff(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        case, _ = await h.open_case(topic="personalausweis")
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.state == "live" and fresh.room_id
        room = h.hs.rooms[fresh.room_id]
        assert room.members[case.ghost_mxid] == "join"
        assert room.members[ANNA] == "invite"
        assert fresh.invited == [ANNA] and fresh.routed_at is not None
        assert h.hs.displaynames[case.ghost_mxid] == f"Erika Muster ({case.reference})"
        # The citizen's first message reaches the room and the team notice.
        await h.cases.post_citizen_message(fresh, "c1", "Mein Ausweis ist weg.")
        assert h.hs.messages(fresh.room_id, case.ghost_mxid)[0]["body"] == (
            "Mein Ausweis ist weg."
        )
        team = h.hs.room_of_alias("team-buergerbuero")
        notices = [c["body"] for c in h.hs.messages(team.room_id)]
        assert any(case.reference in n and "Mein Ausweis" in n for n in notices)
        announced = await h.store.get_case(case.case_id)
        assert announced is not None and announced.announced_at is not None


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        (
            "de",
            [
                "Ihr Anliegen ist unter {ref} bei Bürgerbüro eingegangen.",
                "Anna Schmidt (Bürgerbüro) ist dem Chat beigetreten.",
                "Anna Schmidt (Bürgerbüro) kümmert sich jetzt um Ihr Anliegen.",
                "Ihr Anliegen wurde an Bauen und Wohnen weitergegeben.",
                "Der Chat {ref} wurde von Anna Schmidt beendet.",
            ],
        ),
        (
            "en",
            [
                "Your request has been received under {ref} by Bürgerbüro.",
                "Anna Schmidt (Bürgerbüro) has joined the chat.",
                "Anna Schmidt (Bürgerbüro) is now taking care of your request.",
                "Your request has been passed on to Bauen und Wohnen.",
                "The chat {ref} has been closed by Anna Schmidt.",
            ],
        ),
    ],
)
async def test_every_system_line_is_in_the_citizens_language(
    tmp_path: Path, language: str, lines: list[str]
) -> None:
    """joined, claimed, transferred, closed: the citizen reads each in the
    language they chose (German and English were mixed before)."""
    async with harness(tmp_path) as h:
        case, _ = await h.open_case(language=language)
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "!claim")
        await h.staff_says(case, ANNA, "!transfer bauen")
        await h.staff_says(case, ANNA, "!close")
        expected = [line.format(ref=case.reference) for line in lines]
        assert await h.system_lines(case) == expected


async def test_closing_archives_the_transcript_as_a_durable_job(
    tmp_path: Path,
) -> None:
    """The archive job is written with the close; while Synapse is away it is
    retried, then the PDF is in the archive folder and staff have left."""
    async with harness(tmp_path) as h:
        case, _ = await h.open_case()
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "Guten Tag!")
        h.hs.down = True
        closed = await h.cases.close_case(case, by=ANNA)
        assert closed
        history = await h.cases.lifecycle.history(case.case_id)
        close_event = history[-1]
        assert close_event.kind is Kind.CLOSED
        job = await h.jobs.get(f"transcript.archive:{close_event.id}")
        assert job is not None and job.state == "queued"
        await h.run_jobs()
        archive = h.config.plugin("transcripts").archive_dir / f"{case.reference}.pdf"
        assert not archive.exists()
        job = await h.jobs.get(f"transcript.archive:{close_event.id}")
        assert job is not None and job.state == "queued" and job.attempts == 1
        h.hs.down = False
        h.clock.advance(minutes=1)
        await h.run_jobs()
        assert archive.read_bytes().startswith(b"%PDF")
        stored = await h.bot("transcript").archives.get(case.case_id)
        assert stored is not None and stored.pages >= 1


async def test_a_case_nobody_wrote_in_is_announced_after_a_minute_once(
    tmp_path: Path,
) -> None:
    """The team hears of a case whose citizen has not written yet: not at once
    (the first message belongs in the notice), after a minute, and only once."""
    from tests.harness import minutes

    async with harness(tmp_path) as h:
        case, _ = await h.open_case(topic="personalausweis")

        def notices() -> list[str]:
            alias = f"#team-buergerbuero:{h.hs.server_name}"
            if alias not in h.hs.aliases:
                return []
            return [c["body"] for c in h.hs.messages(h.hs.aliases[alias])]

        before = [n for n in notices() if case.reference in n]
        await h.bot("routing").tick()
        assert [n for n in notices() if case.reference in n] == before == []
        h.clock.advance(minutes(1.5))
        await h.bot("routing").tick()
        await h.bot("routing").tick()
        announced = [n for n in notices() if case.reference in n]
        assert len(announced) == 1, notices()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.announced_at is not None
