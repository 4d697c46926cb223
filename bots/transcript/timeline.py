"""A case's history as transcript entries: Synapse's events of the case room,
merged with the case's system events and refused files from the bridge database.

Pure: no I/O here. :mod:`bots.transcript.sources` reads both places; the bot
(``!transcript``, the close hook, the citizen download) and the
``verify-transcript`` command go through :func:`sources.case_entries`, so the
same case gives the same entries and the same final hash.

What a transcript leaves out, on purpose:

* staff commands (a staff text starting with ``!``), which the citizen never saw;
* every ``m.notice`` of the bot: answers to commands (help, errors, moderator
  links) and scanner alerts for staff. What they announce is taken from the
  case's own records instead: claimed, transferred, video started/ended come
  from its system events, refused files from the scanner's rows, and the close
  from the case and the ``!close`` command (who and note);
* staff notices (``m.notice``), which stay among staff;
* everything after the case was closed (staff removed from the room …).

Lines written here (joined, took on, passed on, closed, file not delivered) are
German in the archive copy (:data:`words.ARCHIVE_LINES`) and in the case's
language in the citizen's; other system events (video, queue …) are shown as
the citizen read them, in the case's language, in both copies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.config import Config
from bridge.db.models import Case
from bridge.i18n import SOURCE, language_of

from .model import Attachment, CaseInfo, Entry, SenderKind
from .records import CaseRecords, FileRecord, SystemRecord
from .words import ARCHIVE, Lines, Words

#: How the archive copy labels a staff note (never in the citizen's copy). The
#: chain covers the entries' text: archives made before the two copies say
#: "Notiz" too, so they still verify.
INTERNAL_NOTE = "Notiz"
#: Marks the bot's own transcript posts, which never become part of a transcript.
TRANSCRIPT_MARKER = "de.buergerchat.transcript"
FILE_TYPES = ("m.image", "m.file", "m.video", "m.audio")
#: System events shown another way: the opening is in the header, joins come
#: from Synapse's member events, and the close is the transcript's last entry.
SHOWN_ELSEWHERE = frozenset({"opened", "staff_joined", "closed"})
#: Clock difference allowed between Synapse's and the bridge's time stamps when a
#: system event is matched to the staff command that caused it.
COMMAND_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class StaffCommand:
    """A ``!command`` a staff member typed in the room (not an entry itself)."""

    ts: datetime
    sender: str
    name: str
    args: str
    event_id: str


def staff_display_name(config: Config, mxid: str, displayname: str | None) -> str:
    """The name staff appear under: the configured name, else their Matrix name."""
    staff = config.all_staff().get(mxid)
    if staff and staff.name:
        return staff.name
    if displayname:
        return displayname
    return mxid.split(":", 1)[0].lstrip("@")


def is_command(content: Mapping[str, Any]) -> bool:
    """A text for the bots (as the command router and the bridge read it)."""
    return content.get("msgtype") in ("m.text", "m.emote") and str(
        content.get("body") or ""
    ).startswith("!")


def is_file_event(event: Mapping[str, Any]) -> bool:
    content = event.get("content") or {}
    return (
        event.get("type") == "m.room.message"
        and content.get("msgtype") in FILE_TYPES
        and TRANSCRIPT_MARKER not in content
    )


def event_time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event["origin_server_ts"]) / 1000, UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=value.tzinfo or UTC)


def _counts(event: Mapping[str, Any], closed_at: datetime | None) -> bool:
    """False for events a transcript never shows: redacted, or after the close."""
    if "origin_server_ts" not in event:
        return False
    if "redacted_because" in (event.get("unsigned") or {}):
        return False
    return closed_at is None or event_time(event) <= closed_at


def unscanned_files(
    events: Iterable[Mapping[str, Any]], case: Case, records: CaseRecords
) -> dict[str, str]:
    """Event id → ``mxc://`` URL of files with no known SHA-256 (neither in the
    event nor in the scanner's rows): their digest must come from the file."""
    known = records.scans()
    closed_at = _aware(case.closed_at)
    found = {}
    for event in events:
        if not is_file_event(event) or not _counts(event, closed_at):
            continue
        content = event.get("content") or {}
        event_id = str(event.get("event_id") or "")
        if _sha256(content) or known.get(event_id, ("", ""))[0] or not event_id:
            continue
        if isinstance(content.get("url"), str):
            found[event_id] = content["url"]
    return found


def _sha256(content: Mapping[str, Any]) -> str | None:
    value = (content.get("de.buergerchat.scan") or {}).get("sha256")
    return value.lower() if isinstance(value, str) and len(value) == 64 else None


def entries_from_events(
    events: Iterable[Mapping[str, Any]],
    *,
    config: Config,
    case: Case,
    records: CaseRecords | None = None,
    digests: Mapping[str, str] | None = None,
    internal: bool = True,
) -> list[Entry]:
    """Synapse events (oldest first) and the case's records → entries.

    ``digests`` maps event ids to the SHA-256 of files read back from the
    media repository (see :func:`unscanned_files`). ``internal``: the town's
    archive copy, in German with the staff's notes of ``!transfer`` and
    ``!close``; without, the citizen's copy in the case's language, without.
    """
    records = records or CaseRecords()
    closed_at = _aware(case.closed_at)
    lines = copy_lines(case, internal)
    room = _Room(
        config=config,
        bot=config.bot_mxid,
        ghost=case.ghost_mxid,
        citizen=case.citizen_name or lines("citizen"),
        files=_FileFacts(records.scans(), digests or {}, lines),
        lines=lines,
    )
    conversation: list[Entry] = []
    commands: list[StaffCommand] = []
    for event in events:
        if "origin_server_ts" not in event:
            continue
        ts = event_time(event)
        if closed_at is not None and ts > closed_at:
            break  # what happens after closing (staff removed …) is not the case
        if "redacted_because" in (event.get("unsigned") or {}):
            continue
        item = _read_event(room, event, ts)
        said = (event.get("content") or {}).get("msgtype") == "m.text"
        if (
            isinstance(item, StaffCommand)
            and item.name == "goodbye"
            and said
            and item.args
        ):
            # "!goodbye <text>" is said to the citizen: part of both copies
            name = staff_display_name(config, item.sender, None)
            conversation.append(
                Entry(ts, "staff", name, item.args, event_id=item.event_id)
            )
        if isinstance(item, StaffCommand):
            commands.append(item)
        elif item is not None:
            conversation.append(item)
    shown = {e.event_id for e in conversation if e.event_id}
    added = _record_entries(records, room, commands, closed_at, shown, internal)
    entries = _merge(conversation, added)
    if closed_at is not None:
        entries.append(_closed_entry(room, commands, closed_at, internal))
    return entries


def copy_lines(case: Case, internal: bool) -> Lines:
    """The wording of a copy's own lines: the archive's German, or the case's
    language for the citizen."""
    return ARCHIVE if internal else Lines(case.language)


@dataclass(frozen=True)
class _Room:
    """Who is who in a case room, and what is known of its files."""

    config: Config
    bot: str
    ghost: str
    citizen: str
    files: _FileFacts
    lines: Lines = ARCHIVE


def _read_event(
    room: _Room, event: Mapping[str, Any], ts: datetime
) -> Entry | StaffCommand | None:
    """One shown, unredacted event → an entry, a staff command, or nothing."""
    content = event.get("content") or {}
    kind = event.get("type")
    if kind == "m.room.member":
        return _join_entry(room, event, ts)
    if kind != "m.room.message" or TRANSCRIPT_MARKER in content:
        return None
    return _message_item(room, event, ts)


def _join_entry(room: _Room, event: Mapping[str, Any], ts: datetime) -> Entry | None:
    """A staff member's first join as a system line (never the bot or citizen)."""
    sender = str(event.get("sender") or "")
    content = event.get("content") or {}
    prev = (event.get("unsigned") or {}).get("prev_content") or {}
    joined = content.get("membership") == "join" and prev.get("membership") != "join"
    if not joined or sender in (room.bot, room.ghost, ""):
        return None
    name = staff_display_name(room.config, sender, content.get("displayname"))
    text = room.lines("joined", name=name)
    return Entry(ts, "system", "System", text, event_id=event.get("event_id"))


def _message_item(
    room: _Room, event: Mapping[str, Any], ts: datetime
) -> Entry | StaffCommand | None:
    """A message as the citizen saw it, a staff command, or None if not shown."""
    sender, event_id = str(event.get("sender") or ""), event.get("event_id")
    content = event.get("content") or {}
    msgtype, body = content.get("msgtype"), str(content.get("body") or "")
    who: SenderKind
    if sender == room.bot:
        if msgtype in FILE_TYPES:
            return room.files.entry(ts, "system", "System", content, event_id)
        return None  # notices answer staff; what they announce comes from records
    if sender == room.ghost:
        who, name = "citizen", room.citizen
    elif is_command(content):
        if sender in room.config.all_staff():
            return _staff_command(ts, sender, body, event_id)
        return None
    elif msgtype == "m.notice":
        return None  # a staff note, not shown to the citizen
    else:
        who, name = "staff", staff_display_name(room.config, sender, None)
    if msgtype in FILE_TYPES:
        return room.files.entry(ts, who, name, content, event_id)
    if msgtype in ("m.text", "m.emote", "m.notice"):
        return Entry(ts, who, name, body, event_id=event_id)
    return None


def _staff_command(
    ts: datetime, sender: str, body: str, event_id: str | None
) -> StaffCommand:
    command, _, args = body[1:].strip().partition(" ")
    return StaffCommand(ts, sender, command.lower(), args.strip(), str(event_id or ""))


class _FileFacts:
    """SHA-256 and verdict of a file event, from wherever they are known."""

    def __init__(
        self,
        scans: Mapping[str, tuple[str, str]],
        digests: Mapping[str, str],
        lines: Lines = ARCHIVE,
    ) -> None:
        self.scans = scans
        self.digests = digests
        self.lines = lines

    def attachment(
        self, content: Mapping[str, Any], event_id: str | None
    ) -> Attachment | None:
        scan = content.get("de.buergerchat.scan") or {}
        row_sha, row_verdict = self.scans.get(event_id or "", ("", ""))
        sha256 = _sha256(content) or row_sha or self.digests.get(event_id or "", "")
        verdict = scan.get("verdict") if _sha256(content) else None
        if len(sha256) != 64:
            return None
        info = content.get("info") or {}
        return Attachment(
            filename=str(
                content.get("filename") or content.get("body") or self.lines("file")
            ),
            size=int(info.get("size") or 0),
            sha256=sha256.lower(),
            mimetype=str(info.get("mimetype") or "application/octet-stream"),
            verdict=str(verdict or row_verdict or "pending"),
        )

    def entry(
        self,
        ts: datetime,
        who: SenderKind,
        name: str,
        content: Mapping[str, Any],
        event_id: str | None,
    ) -> Entry:
        attachment = self.attachment(content, event_id)
        shown = content.get("body") or self.lines("no_name")
        body = "" if attachment else self.lines("file_named", name=shown)
        return Entry(ts, who, name, body, attachment=attachment, event_id=event_id)


# --- what the case's records add ----------------------------------------------


def _command_for(
    commands: list[StaffCommand],
    name: str,
    at: datetime,
    used: set[str],
    fits: Callable[[StaffCommand], bool] = lambda _: True,
) -> StaffCommand | None:
    """The latest unused ``!name`` command up to ``at`` that fits."""
    for command in reversed(commands):
        if command.name != name or command.event_id in used:
            continue
        if command.ts <= at + COMMAND_SKEW and fits(command):
            used.add(command.event_id)
            return command
    return None


def system_text(
    record: SystemRecord,
    config: Config,
    commands: list[StaffCommand],
    used: set[str],
    internal: bool = True,
    lines: Lines = ARCHIVE,
) -> str:
    """A system event in the words of the record, naming who did it (and, in
    the ``internal`` copy, the staff's note); ``lines``: the copy's wording."""
    extra = record.extra
    if record.kind == "claimed" and extra.get("staff_name"):
        return lines("claimed", name=extra["staff_name"])
    if record.kind == "transferred" and extra.get("department"):
        target = str(extra["department"])
        department = config.department(target)
        label = department.name if department else target
        command = _command_for(
            commands,
            "transfer",
            record.ts,
            used,
            lambda c: c.args.partition(" ")[0].lower() == target,
        )
        if command is None:
            return lines("transferred", department=label)
        who = staff_display_name(config, command.sender, None)
        note = command.args.partition(" ")[2].strip()
        text = lines("transferred_by", name=who, department=label)
        return text + (f" {INTERNAL_NOTE}: {note}" if note and internal else "")
    return record.body


def _refused_entry(record: FileRecord, room: _Room) -> Entry:
    lines = room.lines
    if record.direction == "citizen":
        who: SenderKind = "citizen"
        name = room.citizen
    else:
        who = "staff"
        name = staff_display_name(room.config, record.sender or "", None)
    why = "malware" if record.verdict == "infected" else "rejected"
    reason = lines(why, detail=record.reason or lines("no_detail"))
    attachment = None
    if len(record.sha256) == 64:
        body = lines("not_delivered", reason=reason)
        attachment = Attachment(
            record.filename,
            record.size,
            record.sha256,
            record.mimetype,
            record.verdict,
        )
    else:
        body = lines("not_delivered_named", name=record.filename, reason=reason)
    return Entry(
        record.ts, who, name, body, attachment=attachment, event_id=record.event_id
    )


def _record_entries(
    records: CaseRecords,
    room: _Room,
    commands: list[StaffCommand],
    closed_at: datetime | None,
    shown: set[str],
    internal: bool = True,
) -> list[Entry]:
    used: set[str] = set()
    added: list[Entry] = []
    for record in records.system:
        if record.kind in SHOWN_ELSEWHERE:
            continue
        if closed_at is not None and record.ts > closed_at:
            continue
        text = system_text(record, room.config, commands, used, internal, room.lines)
        added.append(Entry(record.ts, "system", "System", text))
    for file in records.refused():
        if file.event_id in shown:
            continue  # its event is still in the room and listed there
        if closed_at is None or file.settled_at <= closed_at:
            added.append(_refused_entry(file, room))
    added.sort(key=lambda e: e.ts)
    return added


def _merge(conversation: list[Entry], added: list[Entry]) -> list[Entry]:
    """Records slotted into the room's order by time (the room's order wins)."""
    merged: list[Entry] = []
    i = 0
    for entry in added:
        while i < len(conversation) and conversation[i].ts <= entry.ts:
            merged.append(conversation[i])
            i += 1
        merged.append(entry)
    merged.extend(conversation[i:])
    return merged


def _closed_entry(
    room: _Room, commands: list[StaffCommand], closed_at: datetime, internal: bool
) -> Entry:
    command = _command_for(commands, "close", closed_at, set())
    if command is None:
        command = _command_for(commands, "goodbye", closed_at, set())
        if command is not None:  # its text is the staff's entry before this
            command = StaffCommand(command.ts, command.sender, "close", "", "")
    if command is None:
        return Entry(closed_at, "system", "System", room.lines("closed"))
    who = staff_display_name(room.config, command.sender, None)
    text = room.lines("closed_by", name=who)
    note = command.args if internal else ""
    return Entry(
        closed_at,
        "system",
        "System",
        text + (f" {INTERNAL_NOTE}: {note}" if note else ""),
    )


ARCHIVE_COPY = "Archiv der Verwaltung (mit internen Notizen)"
#: The German citizen's copy says so (``pdf.copy_citizen`` in other languages).
CITIZEN_COPY = "für Bürger*in (ohne interne Notizen der Verwaltung)"


def case_info(
    config: Config, case: Case, entries: Iterable[Entry], internal: bool = True
) -> CaseInfo:
    """The header of a case's transcript, from the case row and its entries:
    the archive copy (``internal``) is German and names the citizen's language,
    the citizen's copy is in the case's language. Department and topic are
    named as the town's configuration names them."""
    words = Words(SOURCE if internal else case.language)
    department = config.department(case.department)
    staff = tuple(
        dict.fromkeys(e.sender_name for e in entries if e.sender_kind == "staff")
    )
    opened = _aware(case.created_at)
    assert opened is not None
    return CaseInfo(
        reference=case.reference,
        department=department.name if department else case.department,
        topic=config.routing.topic_label(case.topic) or "",
        copy=ARCHIVE_COPY if internal else words("copy_citizen"),
        opened_at=opened,
        closed_at=_aware(case.closed_at),
        citizen_name=case.citizen_name or copy_lines(case, internal)("citizen"),
        staff_names=staff,
        town_name=config.town.name,
        logo_path=str(config.town.logo) if config.town.logo else None,
        language=words.language,
        citizen_language=language_of(case.language),
    )
