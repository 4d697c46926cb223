"""A case room's history as transcript entries: Synapse's events, read forwards
from the start, turned into :class:`Entry` values.

The bot (``!transcript``, the close hook, the citizen download) and the
``verify-transcript`` command both go through :func:`case_entries`, so the same
room gives the same entries and the same final hash.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mautrix.api import HTTPAPI, Method

from bridge.config import Config
from bridge.db.models import Case

from .model import Attachment, CaseInfo, Entry

log = logging.getLogger("buergerchat.transcript")

#: Marks the bot's own transcript posts, which never become part of a transcript.
TRANSCRIPT_MARKER = "de.buergerchat.transcript"
PAGE_SIZE = 200
#: Thumbnails are only drawn for images up to this size (the original stays in Matrix).
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024
FILE_TYPES = ("m.image", "m.file", "m.video", "m.audio")

#: Fetches an ``mxc://`` image for a thumbnail; None when it cannot be had.
ImageLoader = Callable[[str], Awaitable[bytes | None]]


async def room_events(api: HTTPAPI, room_id: str) -> list[dict[str, Any]]:
    """Every timeline event of the room, oldest first, as Synapse returns them."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages"
    while True:
        params = {"dir": "f", "limit": str(PAGE_SIZE)}
        if token:
            params["from"] = token
        page = await api.request(Method.GET, path, query_params=params)
        chunk = page.get("chunk") or []
        events.extend(chunk)
        token = page.get("end")
        if not chunk or not token:
            return events


def staff_display_name(config: Config, mxid: str, displayname: str | None) -> str:
    """The name staff appear under: the configured name, else their Matrix name."""
    staff = config.all_staff().get(mxid)
    if staff and staff.name:
        return staff.name
    if displayname:
        return displayname
    return mxid.split(":", 1)[0].lstrip("@")


def _ts(event: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event["origin_server_ts"]) / 1000, UTC)


def _attachment(
    content: Mapping[str, Any], known: Mapping[str, tuple[str, str]], event_id: str
) -> Attachment | None:
    scan = content.get("de.buergerchat.scan") or {}
    sha256, verdict = scan.get("sha256"), scan.get("verdict")
    if not sha256 and event_id in known:
        sha256, verdict = known[event_id]
    if not isinstance(sha256, str) or len(sha256) != 64:
        return None
    info = content.get("info") or {}
    return Attachment(
        filename=str(content.get("filename") or content.get("body") or "Datei"),
        size=int(info.get("size") or 0),
        sha256=sha256.lower(),
        mimetype=str(info.get("mimetype") or "application/octet-stream"),
        verdict=str(verdict or "pending"),
    )


def entries_from_events(
    events: Iterable[Mapping[str, Any]],
    *,
    config: Config,
    case: Case,
    scans: Mapping[str, tuple[str, str]] | None = None,
) -> list[Entry]:
    """Pure: Synapse events → entries. ``scans`` maps event ids to (sha256, verdict)
    from the scanner's table, for files whose content carries no scan info."""
    bot = config.bot_mxid
    closed_at = (
        case.closed_at.replace(tzinfo=case.closed_at.tzinfo or UTC)
        if (case.closed_at)
        else None
    )
    citizen = case.citizen_name or "Bürger*in"
    entries: list[Entry] = []
    for event in events:
        sender, kind = event.get("sender", ""), event.get("type")
        content = event.get("content") or {}
        if "origin_server_ts" not in event or "redacted_because" in event.get(
            "unsigned", {}
        ):
            continue
        ts = _ts(event)
        if closed_at is not None and ts > closed_at:
            break  # what happens after closing (staff removed …) is not the case
        event_id = event.get("event_id")
        if kind == "m.room.member":
            prev = (event.get("unsigned") or {}).get("prev_content") or {}
            joined = (
                content.get("membership") == "join" and prev.get("membership") != "join"
            )
            if joined and sender not in (bot, case.ghost_mxid) and sender != "":
                name = staff_display_name(config, sender, content.get("displayname"))
                entries.append(
                    Entry(
                        ts,
                        "system",
                        "System",
                        f"{name} ist beigetreten.",
                        event_id=event_id,
                    )
                )
            continue
        if kind != "m.room.message" or TRANSCRIPT_MARKER in content:
            continue
        msgtype, body = content.get("msgtype"), str(content.get("body") or "")
        if sender == bot:
            if msgtype == "m.notice":
                entries.append(Entry(ts, "system", "System", body, event_id=event_id))
            elif msgtype in FILE_TYPES:
                entries.append(
                    _file_entry(ts, "system", "System", content, scans, event_id)
                )
            continue
        if sender == case.ghost_mxid:
            who, name = "citizen", citizen
        else:
            if msgtype in ("m.text", "m.emote") and body.startswith("!"):
                continue  # a command to the bots, not part of the conversation
            who, name = "staff", staff_display_name(config, sender, None)
        if msgtype in FILE_TYPES:
            entries.append(_file_entry(ts, who, name, content, scans, event_id))
        elif msgtype in ("m.text", "m.emote", "m.notice"):
            entries.append(Entry(ts, who, name, body, event_id=event_id))  # type: ignore[arg-type]
    return entries


def _file_entry(
    ts: datetime,
    who: str,
    name: str,
    content: Mapping[str, Any],
    scans: Mapping[str, tuple[str, str]] | None,
    event_id: str | None,
) -> Entry:
    attachment = _attachment(content, scans or {}, event_id or "")
    body = "" if attachment else f"Datei: {content.get('body') or 'ohne Namen'}"
    return Entry(ts, who, name, body, attachment=attachment, event_id=event_id)  # type: ignore[arg-type]


def case_info(config: Config, case: Case, entries: Iterable[Entry]) -> CaseInfo:
    """The header of a case's transcript, from the case row and its entries."""
    department = config.department(case.department)
    staff = tuple(
        dict.fromkeys(e.sender_name for e in entries if e.sender_kind == "staff")
    )
    opened = case.created_at.replace(tzinfo=case.created_at.tzinfo or UTC)
    closed = (
        case.closed_at.replace(tzinfo=case.closed_at.tzinfo or UTC)
        if case.closed_at
        else None
    )
    return CaseInfo(
        reference=case.reference,
        department=department.name if department else case.department,
        topic=case.topic or "",
        opened_at=opened,
        closed_at=closed,
        citizen_name=case.citizen_name or "Bürger*in",
        staff_names=staff,
        town_name=config.town.name,
        logo_path=str(config.town.logo) if config.town.logo else None,
    )


async def with_thumbnails(
    entries: list[Entry], events: Iterable[Mapping[str, Any]], load: ImageLoader
) -> list[Entry]:
    """Entries with image bytes for thumbnails (not hashed, so the chain stays)."""
    urls = {
        e.get("event_id"): (e.get("content") or {}).get("url")
        for e in events
        if (e.get("content") or {}).get("msgtype") == "m.image"
    }
    result = []
    for entry in entries:
        att = entry.attachment
        url = urls.get(entry.event_id)
        if att and att.is_image and url and att.size <= MAX_THUMBNAIL_BYTES:
            try:
                image = await load(url)
            except Exception:  # a missing thumbnail must not stop the transcript
                log.warning("no thumbnail for %s", entry.event_id, exc_info=True)
                image = None
            if image:
                att = Attachment(
                    att.filename,
                    att.size,
                    att.sha256,
                    att.mimetype,
                    att.verdict,
                    image=image,
                )
                entry = Entry(
                    entry.ts,
                    entry.sender_kind,
                    entry.sender_name,
                    entry.body,
                    attachment=att,
                    event_id=entry.event_id,
                )
        result.append(entry)
    return result
