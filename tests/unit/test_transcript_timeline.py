"""Which parts of a case room become transcript entries, and how the case's own
records (system events, scanner rows) are slotted in."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bots.scanner.models import Attachment as AttachmentRow
from bots.transcript import final_hash
from bots.transcript.records import (
    CaseRecords,
    FileRecord,
    SystemRecord,
    load_records,
)
from bots.transcript.timeline import case_info, entries_from_events, unscanned_files
from bridge.config import Config, load_config
from bridge.db.models import Case
from bridge.db.store import Store

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
BOT = "@buergerchat:buergerchat.localhost"
GHOST = "@bc_eva:buergerchat.localhost"
ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"
DIGEST = hashlib.sha256(b"Bauplan").hexdigest()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(REPO / "config", tmp_path_factory.mktemp("data"))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def case(closed_after: float | None = None) -> Case:
    return Case(
        case_id="c1",
        reference="BC-2026-000042",
        department="bauen",
        topic="Bauantrag",
        state="open",
        language="de",
        citizen_name="Eva Muster",
        ghost_mxid=GHOST,
        room_id="!room:buergerchat.localhost",
        created_at=T0,
        closed_at=None if closed_after is None else at(closed_after),
    )


class Room:
    """Synapse's /messages chunk for a made-up room, built event by event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(
        self, minutes: float, sender: str, content: dict[str, Any], **more: Any
    ) -> str:
        event_id = f"$e{len(self.events)}"
        self.events.append(
            {
                "event_id": event_id,
                "type": more.pop("type", "m.room.message"),
                "sender": sender,
                "origin_server_ts": int(at(minutes).timestamp() * 1000),
                "content": content,
                **more,
            }
        )
        return event_id

    def text(self, minutes: float, sender: str, body: str, kind: str = "m.text") -> str:
        return self.add(minutes, sender, {"msgtype": kind, "body": body})

    def file(self, minutes: float, sender: str, name: str, **extra: Any) -> str:
        content = {
            "msgtype": "m.file",
            "body": name,
            "url": f"mxc://buergerchat.localhost/{name}",
            "info": {"mimetype": "application/pdf", "size": 7},
            **extra,
        }
        return self.add(minutes, sender, content)


def bodies(entries: list[Any]) -> list[str]:
    return [e.body for e in entries]


def test_staff_commands_and_the_bots_answers_are_left_out(config: Config) -> None:
    """!help and !video by staff, the bot's help list and its notice with the
    moderator link never reach the transcript; the conversation around them does."""
    room = Room()
    room.text(1, GHOST, "Ich brauche einen Bauantrag.")
    room.text(2, BERND, "!help")
    room.text(
        2.1, BOT, "Befehle in diesem Raum:\n!help – zeigt diese Liste", "m.notice"
    )
    room.text(3, BERND, "!video")
    room.text(
        3.1, BOT, "Beitreten als Moderator: https://meet/x?jwt=geheim", "m.notice"
    )
    room.text(4, BERND, "Gerne, ich schicke Ihnen das Formular.")
    entries = entries_from_events(room.events, config=config, case=case())
    assert bodies(entries) == [
        "Ich brauche einen Bauantrag.",
        "Gerne, ich schicke Ihnen das Formular.",
    ]
    assert [e.sender_kind for e in entries] == ["citizen", "staff"]
    assert [e.sender_name for e in entries] == ["Eva Muster", "Bernd Keller"]


def test_staff_notices_and_commands_of_non_staff_are_left_out(config: Config) -> None:
    """A staff m.notice stays among staff; a "!" text is never part of the chat."""
    room = Room()
    room.text(1, BERND, "intern: Akte liegt bei Herrn Maier", "m.notice")
    room.text(2, "@gast:buergerchat.localhost", "!close")
    room.text(3, BERND, "Guten Tag!")
    entries = entries_from_events(room.events, config=config, case=case())
    assert bodies(entries) == ["Guten Tag!"]


def test_system_events_come_from_the_case_records_in_time_order(
    config: Config,
) -> None:
    """Claimed, transferred (with who and the note of the !transfer command) and
    the video start and end are system entries between the messages."""
    room = Room()
    room.text(1, GHOST, "Hallo")
    room.text(2, ANNA, "!claim")
    room.text(3, ANNA, "!transfer bauen Bauantrag gehört zum Bauamt")
    room.text(4, BERND, "!video")
    room.text(5, BERND, "Sehen Sie mich?")
    room.text(6, BERND, "!video end")
    records = CaseRecords(
        system=(
            SystemRecord(at(0), "opened", "Ihr Anliegen ist eingegangen."),
            SystemRecord(
                at(2.01),
                "claimed",
                "Anna Schmidt (Bürgerbüro) kümmert sich jetzt um Ihr Anliegen.",
                {"kind": "claimed", "staff_name": "Anna Schmidt"},
            ),
            SystemRecord(
                at(3.01),
                "transferred",
                "Ihr Anliegen wurde an Bauen und Wohnen weitergegeben.",
                {"kind": "transferred", "department": "bauen"},
            ),
            SystemRecord(at(3.5), "staff_joined", "Bernd Keller ist beigetreten."),
            SystemRecord(
                at(4.01),
                "video_started",
                "Bernd Keller hat eine Videoberatung gestartet.",
            ),
            SystemRecord(
                at(6.01),
                "video_ended",
                "Die Videoberatung wurde von Bernd Keller beendet.",
            ),
        )
    )
    entries = entries_from_events(
        room.events, config=config, case=case(), records=records
    )
    assert bodies(entries) == [
        "Hallo",
        "Anna Schmidt hat den Fall übernommen.",
        "Anna Schmidt hat den Fall an Bauen und Wohnen weitergegeben. "
        "Notiz: Bauantrag gehört zum Bauamt",
        "Bernd Keller hat eine Videoberatung gestartet.",
        "Sehen Sie mich?",
        "Die Videoberatung wurde von Bernd Keller beendet.",
    ]
    system = [e for e in entries if e.sender_kind == "system"]
    assert [e.ts for e in system] == [at(2.01), at(3.01), at(4.01), at(6.01)]
    # The citizen's copy: the same, without the staff's note.
    citizen = entries_from_events(
        room.events, config=config, case=case(), records=records, internal=False
    )
    assert [e.body for e in citizen][2] == (
        "Anna Schmidt hat den Fall an Bauen und Wohnen weitergegeben."
    )
    assert not any("Bauantrag" in e.body for e in citizen)


def test_transfer_without_its_command_still_names_the_department(
    config: Config,
) -> None:
    """A transfer record with no matching !transfer in the room says where to."""
    records = CaseRecords(
        system=(
            SystemRecord(
                at(1),
                "transferred",
                "x",
                {"kind": "transferred", "department": "bauen"},
            ),
        )
    )
    entries = entries_from_events([], config=config, case=case(), records=records)
    assert bodies(entries) == ["Der Fall wurde an Bauen und Wohnen weitergegeben."]


def test_close_is_the_last_entry_with_who_and_note(config: Config) -> None:
    """The close comes from the case's closing time and the !close command; the
    bot's kicks after it and the bridge's own "closed" record are not shown."""
    room = Room()
    room.text(1, GHOST, "Danke!")
    room.text(2, BERND, "!close Antrag vollständig")
    room.text(2.01, BOT, "Bernd Keller schließt den Fall.", "m.notice")
    room.add(
        2.5,
        BOT,
        {"membership": "leave"},
        type="m.room.member",
        state_key=BERND,
    )
    records = CaseRecords(
        system=(SystemRecord(at(2.2), "closed", "Der Chat wurde beendet."),)
    )
    closed = case(closed_after=2.1)
    entries = entries_from_events(
        room.events, config=config, case=closed, records=records
    )
    assert bodies(entries) == [
        "Danke!",
        "Bernd Keller hat den Fall abgeschlossen. Notiz: Antrag vollständig",
    ]
    assert entries[-1].ts == at(2.1) and entries[-1].sender_kind == "system"
    citizen = entries_from_events(
        room.events, config=config, case=closed, records=records, internal=False
    )
    assert bodies(citizen) == ["Danke!", "Bernd Keller hat den Fall abgeschlossen."]


def test_goodbye_is_said_to_the_citizen_in_both_copies(config: Config) -> None:
    """!goodbye <text>: the text is a staff message in both copies, then the
    close (with no note)."""
    room = Room()
    room.text(1, GHOST, "Danke!")
    room.text(2, BERND, "!goodbye Gern geschehen, Ihr Ausweis liegt ab Montag bereit.")
    closed = case(closed_after=2.1)
    for internal in (True, False):
        entries = entries_from_events(
            room.events, config=config, case=closed, internal=internal
        )
        assert bodies(entries) == [
            "Danke!",
            "Gern geschehen, Ihr Ausweis liegt ab Montag bereit.",
            "Bernd Keller hat den Fall abgeschlossen.",
        ]
        assert entries[1].sender_kind == "staff"
        assert entries[1].sender_name == "Bernd Keller"


def test_staff_file_without_scan_info_takes_hash_and_verdict_from_the_scanner(
    config: Config,
) -> None:
    """A staff upload's event has no scan result; the scanner's row gives its
    SHA-256 and verdict. A citizen file keeps what its event says."""
    room = Room()
    staff_file = room.file(1, BERND, "Bauplan.pdf")
    citizen_digest = hashlib.sha256(b"Antrag").hexdigest()
    room.file(
        2,
        GHOST,
        "Antrag.pdf",
        **{"de.buergerchat.scan": {"verdict": "clean", "sha256": citizen_digest}},
    )
    row = FileRecord(
        at(1),
        at(1.1),
        "staff",
        BERND,
        "Bauplan.pdf",
        "application/pdf",
        7,
        DIGEST,
        "clean",
        staff_file,
    )
    entries = entries_from_events(
        room.events, config=config, case=case(), records=CaseRecords(files=(row,))
    )
    staff, citizen = (e.attachment for e in entries)
    assert staff is not None and citizen is not None
    assert (staff.sha256, staff.verdict, staff.size) == (DIGEST, "clean", 7)
    assert (citizen.sha256, citizen.verdict) == (citizen_digest, "clean")


def test_file_nobody_hashed_uses_the_digest_read_from_synapse(config: Config) -> None:
    """Without a scanner row the file's own bytes give the hash (verdict pending);
    without those it is listed by name only."""
    room = Room()
    event_id = room.file(1, BERND, "Bauplan.pdf")
    assert unscanned_files(room.events, case(), CaseRecords()) == {
        event_id: "mxc://buergerchat.localhost/Bauplan.pdf"
    }
    [entry] = entries_from_events(
        room.events, config=config, case=case(), digests={event_id: DIGEST}
    )
    assert entry.attachment is not None
    assert (entry.attachment.sha256, entry.attachment.verdict) == (DIGEST, "pending")
    [bare] = entries_from_events(room.events, config=config, case=case())
    assert bare.attachment is None and bare.body == "Datei: Bauplan.pdf"


def test_refused_files_are_listed_once_with_their_verdict(config: Config) -> None:
    """An infected citizen upload (never in the room) is listed with its verdict
    and the signature; a refused staff file whose event is still in the room is
    not listed twice."""
    room = Room()
    room.text(1, GHOST, "Hier mein Antrag")
    still_there = room.file(3, BERND, "gross.pdf")
    infected = FileRecord(
        at(2),
        at(2.1),
        "citizen",
        None,
        "Antrag.docx",
        "application/msword",
        68,
        DIGEST,
        "infected",
        None,
        "Eicar-Signature",
    )
    refused = FileRecord(
        at(3),
        at(3.1),
        "staff",
        BERND,
        "gross.pdf",
        "application/pdf",
        7,
        DIGEST,
        "refused",
        still_there,
        "zu groß",
    )
    entries = entries_from_events(
        room.events,
        config=config,
        case=case(),
        records=CaseRecords(files=(infected, refused)),
    )
    assert [e.sender_kind for e in entries] == ["citizen", "citizen", "staff"]
    listed = entries[1]
    assert listed.body == "Datei nicht zugestellt (Schadsoftware: Eicar-Signature)."
    assert listed.attachment is not None
    assert listed.attachment.verdict == "infected"
    assert entries[2].attachment is not None
    assert entries[2].attachment.verdict == "refused"


def test_files_refused_after_the_close_do_not_change_the_archive(
    config: Config,
) -> None:
    """A file still being checked when the case closed is not added later, so
    the archived hash stays verifiable."""
    late = FileRecord(
        at(1),
        at(9),
        "citizen",
        None,
        "spät.pdf",
        "application/pdf",
        7,
        DIGEST,
        "infected",
        None,
        "Eicar",
    )
    closed = case(closed_after=5)
    entries = entries_from_events(
        [], config=config, case=closed, records=CaseRecords(files=(late,))
    )
    assert bodies(entries) == ["Der Fall wurde abgeschlossen."]


def test_the_same_case_gives_the_same_final_hash_and_a_removed_record_not(
    config: Config,
) -> None:
    """Entries are a function of the events and records: read twice, the chain
    ends the same; a system event removed from the database changes it."""
    room = Room()
    room.text(1, GHOST, "Hallo")
    room.text(2, ANNA, "!claim")
    claim = SystemRecord(
        at(2.01), "claimed", "x", {"kind": "claimed", "staff_name": "Anna Schmidt"}
    )
    closed = case(closed_after=3)

    def chain_end(records: CaseRecords) -> str:
        entries = entries_from_events(
            room.events, config=config, case=closed, records=records
        )
        return final_hash(case_info(config, closed, entries), entries)

    first = chain_end(CaseRecords(system=(claim,)))
    assert chain_end(CaseRecords(system=(claim,))) == first
    assert chain_end(CaseRecords()) != first


async def test_records_are_read_from_the_bridge_database(store: Store) -> None:
    """System events and scanner rows of one case come back oldest first, with
    the scanner's states as verdicts and UTC times."""
    row = await store.create_case(
        case_id="c1",
        reference_prefix="BC",
        department="bauen",
        topic=None,
        language="de",
        citizen_name="Eva",
        ghost_mxid=GHOST,
        state="open",
    )
    await store.add_event("c1", type="message", sender="citizen", body="Hallo")
    await store.add_event(
        "c1",
        type="system",
        sender="system",
        body="Anna kümmert sich",
        extra={"kind": "claimed", "staff_name": "Anna Schmidt"},
    )
    now = datetime.now(UTC)
    async with store.session.begin() as s:
        for number, state in enumerate(("delivered", "infected")):
            s.add(
                AttachmentRow(
                    attachment_id=f"a{number}",
                    case_id="c1",
                    direction="staff",
                    filename=f"f{number}.pdf",
                    mimetype="application/pdf",
                    size=7,
                    sha256=DIGEST.upper(),
                    state=state,
                    signature="Eicar" if state == "infected" else None,
                    matrix_event_id=f"$f{number}",
                    sender=BERND,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    records = await load_records(store, row)
    assert [(r.kind, r.extra["staff_name"]) for r in records.system] == [
        ("claimed", "Anna Schmidt")
    ]
    assert records.scans() == {"$f0": (DIGEST, "clean"), "$f1": (DIGEST, "infected")}
    [refused] = records.refused()
    assert refused.reason == "Eicar" and refused.ts.tzinfo is not None
