"""Reading a case for its transcript: the room's events from Synapse, the case's
records from the bridge database, and file bytes from the media repository.

The bot and ``verify-transcript`` both call :func:`case_entries`, so a case
gives the same entries, and the same final hash, wherever it is read from.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from mautrix.api import HTTPAPI, Method

from bridge.config import Config
from bridge.db.models import Case
from bridge.db.store import Store

from .model import Entry
from .records import CaseRecords, load_records
from .timeline import entries_from_events, unscanned_files

log = logging.getLogger("buergerchat.transcript")

PAGE_SIZE = 200
#: Thumbnails are only drawn for images up to this size (the original stays in Matrix).
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024
#: How long one file may take to come from the media repository.
MEDIA_TIMEOUT = 60

#: Fetches an ``mxc://`` file; raises when it cannot be had.
MediaLoader = Callable[[str], Awaitable[bytes]]


class MediaUnavailable(Exception):
    def __init__(self, event_id: str, url: str, cause: Exception) -> None:
        super().__init__(
            f"the file of event {event_id} ({url}) could not be read from the "
            f"media repository: {cause!r}; check that Synapse is running and retry"
        )


@dataclass(frozen=True)
class CaseHistory:
    """A case's room events and records, read once; :meth:`copy` makes the
    entries of the town's archive copy (``internal``: with staff notes) or of
    the citizen's copy (without), each with a hash chain of its own."""

    events: list[dict[str, Any]]
    config: Config
    case: Case
    records: CaseRecords
    digests: dict[str, str]

    def copy(self, internal: bool) -> list[Entry]:
        return entries_from_events(
            self.events,
            config=self.config,
            case=self.case,
            records=self.records,
            digests=self.digests,
            internal=internal,
        )


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


async def case_entries(
    api: HTTPAPI,
    store: Store,
    config: Config,
    case: Case,
    load: MediaLoader,
    *,
    missing_ok: bool = True,
) -> CaseHistory:
    """The entries of a case's transcript, as its hash chain covers them.

    A file nobody recorded a digest for is read from the media repository; if
    that fails, ``missing_ok`` lists it by name only (a transcript is still
    made), otherwise the error is raised (a check must not guess).
    """
    if not case.room_id:
        raise ValueError(f"case {case.reference} has no chat room")
    events = await room_events(api, case.room_id)
    records = await load_records(store, case)
    digests: dict[str, str] = {}
    for event_id, url in unscanned_files(events, case, records).items():
        # A file whose digest nobody recorded yet: the bytes in Synapse decide.
        try:
            data = await asyncio.wait_for(load(url), timeout=MEDIA_TIMEOUT)
        except Exception as e:
            if not missing_ok:
                raise MediaUnavailable(event_id, url, e) from e
            log.warning("file %s of %s not read: %s", event_id, case.reference, e)
            continue
        digests[event_id] = await asyncio.to_thread(_sha256, data)
    return CaseHistory(events, config, case, records, digests)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def with_thumbnails(
    entries: list[Entry], events: Iterable[Mapping[str, Any]], load: MediaLoader
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
                image = await asyncio.wait_for(load(url), timeout=MEDIA_TIMEOUT)
            except Exception:  # a missing thumbnail must not stop the transcript
                log.warning("no thumbnail for %s", entry.event_id, exc_info=True)
                image = None
            if image:
                entry = replace(entry, attachment=replace(att, image=image))
        result.append(entry)
    return result
