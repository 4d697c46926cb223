"""Events Synapse never pushed: found in the rooms' history and worked off.

Synapse hands events to the appservice scheduler in memory and moves its
stream position on at once; what is queued there when Synapse stops or dies is
never sent (seen: a staff message written during a clean stop never arrived).
So at every start of the bridge, after every restart of the embedded Synapse,
when Synapse's transaction ids start again, and every ``CATCH_UP_EVERY`` as a
safety net, the inbox walks back through each active case room and works off
what it missed, oldest first, before anything newer (so order per case holds).

The walk does not stop at the first event it has worked off: an event the bridge
has seen can be newer than one it missed (Synapse resends an old transaction
after a newer one went through, a handler was interrupted). It goes back to
``MARGIN`` before the previous catch-up began (at the first one of a process:
before the newest event the inbox had worked off), which covers everything
Synapse can have held in memory since, and clock skew between hosts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mautrix.api import Method, Path
from mautrix.errors import MatrixRequestError
from mautrix.types import RoomID

from .clock import as_utc, utcnow

if TYPE_CHECKING:
    from mautrix.appservice import AppService

    from .db.store import Store

log = logging.getLogger("buergerchat.catchup")

CATCH_UP_EVERY = timedelta(minutes=10)
#: How far before the previous catch-up the next one looks again.
MARGIN = timedelta(minutes=5)
PAGE = 50
MAX_PAGES = 20
PARALLEL = 8
REQUEST_TIMEOUT = 30.0

RoomsProvider = Callable[[], Awaitable[Sequence[str]]]


async def pages_back(
    appservice: AppService,
    room_id: str,
    *,
    page: int,
    max_pages: int,
    timeout: float,  # noqa: ASYNC109 (per request)
) -> AsyncIterator[list[dict[str, Any]]]:
    """The room's history as the bot sees it, newest first, one ``/messages``
    page at a time (at most ``max_pages``); the caller stops when it has enough."""
    token: str | None = None
    for _ in range(max_pages):
        query = {"dir": "b", "limit": str(page)}
        if token:
            query["from"] = token
        answer = await asyncio.wait_for(
            appservice.intent.api.request(
                Method.GET, Path.v3.rooms[RoomID(room_id)].messages, query_params=query
            ),
            timeout,
        )
        chunk = [e for e in answer.get("chunk") or [] if e.get("event_id")]
        if not chunk:
            return
        yield chunk
        token = answer.get("end")
        if not token:
            return


class CatchUp:
    def __init__(
        self,
        store: Store,
        appservice: AppService,
        rooms: RoomsProvider,
        *,
        horizon: timedelta,
    ) -> None:
        self.store = store
        self.appservice = appservice
        self.rooms = rooms
        #: Events older than this are never worked off again (their ids may
        #: have been pruned from the seen table).
        self.horizon = horizon
        #: When the last catch-up whose events were all worked off began.
        self._last_began: datetime | None = None

    async def since(self) -> datetime:
        """How far back this catch-up looks."""
        now = utcnow()
        oldest = now - self.horizon
        last = self._last_began
        if last is None:
            last = await self.store.newest_seen_at()
        if last is None:
            return oldest
        return max(oldest, as_utc(last) - MARGIN)

    def worked_off(self, began: datetime) -> None:
        """The events :meth:`missed` returned for a walk that began at ``began``
        are worked off: the next walk need not look further back than this."""
        self._last_began = began

    async def missed(self) -> list[dict[str, Any]]:
        """Unseen events of every active room, each room's oldest first."""
        rooms = list(await self.rooms())
        limit = asyncio.Semaphore(PARALLEL)
        since = await self.since()

        async def one(room_id: str) -> list[dict[str, Any]]:
            async with limit:
                try:
                    return await self._missed_in(room_id, since)
                except MatrixRequestError as e:
                    if e.http_status == 429 or e.http_status >= 500:
                        raise  # Synapse is busy or away: the whole walk again
                    # The bot may no longer read this room (left, purged): one
                    # such room must not hold up the inbox for all the others.
                    log.warning("cannot read %s to catch up: %s", room_id, e)
                    return []

        found = await asyncio.gather(*(one(r) for r in rooms))
        events = [e for room in found for e in room]
        if events:
            log.warning(
                "%d event(s) in %d room(s) were not worked off yet; "
                "working them off now",
                len(events),
                sum(1 for r in found if r),
            )
        return events

    async def _missed_in(self, room_id: str, since: datetime) -> list[dict[str, Any]]:
        missed: list[dict[str, Any]] = []
        since_ms = since.timestamp() * 1000
        async for chunk in pages_back(
            self.appservice,
            room_id,
            page=PAGE,
            max_pages=MAX_PAGES,
            timeout=REQUEST_TIMEOUT,
        ):
            seen = await self.store.seen_events([str(e["event_id"]) for e in chunk])
            reached = False
            for event in chunk:
                if event.get("origin_server_ts", 0) < since_ms:
                    reached = True
                    break
                if event["event_id"] in seen:
                    continue
                event.setdefault("room_id", room_id)
                missed.append(event)
            if reached:
                break
        return list(reversed(missed))
