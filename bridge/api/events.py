"""What is new in a case, for the citizen's widget, two ways:

- ``GET /api/v1/cases/{id}/events?after=&timeout=&signals=`` — a long-poll: held
  until something is new (or ``timeout``), answered, asked again.
- ``GET /api/v1/cases/{id}/stream`` — Server-Sent Events: one response held for
  up to ``STREAM_SECONDS``, an ``events`` message whenever something is new, a
  comment every ``HEARTBEAT_SECONDS`` so proxies keep it open. It resumes after
  the cursor in ``Last-Event-ID`` (or ``?after=``), as browsers do when they
  reconnect. The widget reads it with ``fetch`` (the token goes in the
  ``Authorization`` header, never the URL) and falls back to long-polling when
  the stream does not come through (a buffering proxy, an old bridge).

Both hand out the same answer (events, next cursor, staff typing and read
marker) and wait on the same wake-ups; a stream saves the re-issue of a request
per message and per timeout, which a herd of widgets otherwise pays all at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web

from ..case import CaseService
from ..config import Config
from ..db.models import CaseEvent
from ..errors import BuergerchatError, InvalidField, Unavailable
from ..limits import Limits
from ..timeline import Page, event_json
from .citizen import bearer
from .middleware import apply_cors

log = logging.getLogger("buergerchat.api")

#: How long one stream is held; then the client connects again (and its token
#: and limits are checked anew).
STREAM_SECONDS = 300.0
HEARTBEAT_SECONDS = 15.0
#: Sent first: a proxy that buffers small writes passes the stream on at once.
PREAMBLE = b":" + b" " * 2048 + b"\n\n"


class CaseEvents:
    def __init__(self, config: Config, cases: CaseService, limits: Limits) -> None:
        self.config = config
        self.cases = cases
        self.limits = limits

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/cases/{case_id}/events", self.events),
            web.get("/api/v1/cases/{case_id}/stream", self.stream),
        ]

    # --- long-poll ----------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        # A widget re-issues its long-poll all the time: the token's last check
        # is trusted a few seconds (bridge.tokens.Tokens.check_reading).
        token = bearer(request)
        case_id = request.match_info["case_id"]
        await self.cases.tokens.check_reading(token, case_id)
        after = int_param(request, "after", 0)
        timeout = min(
            int_param(request, "timeout", 0), self.config.citizen.long_poll_max_seconds
        )
        # The signals (typing, read) the client has seen: a change answers too.
        seen_signals = int_param(request, "signals", -1)
        # Answered empty a little before the timeout asked for, each at its own
        # time: a herd that came together (a message woke it) spreads out.
        held = timeout * random.uniform(0.8, 1.0)
        async with self.limits.poll(token, self.limits.client(request)):
            events = await self.news(case_id, after, seen_signals, held)
        return web.json_response(self.answer(case_id, after, events))

    async def news(
        self,
        case_id: str,
        after: int,
        seen_signals: int,
        seconds: float,
        stop: Callable[[], bool] | None = None,
    ) -> list[CaseEvent]:
        """Wait up to ``seconds`` until the case has events beyond ``after`` or
        its signals moved from ``seen_signals`` (-1: not asked), or ``stop()``
        is true after a wake-up; the events."""
        notifier, signals = self.cases.notifier, self.cases.signals
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            woken = notifier.subscribe(case_id)
            events: list[CaseEvent] = []
            if not notifier.nothing_after(case_id, after):
                # Idle polls skip this: the notifier knows nothing came since.
                events = await self.cases.timeline.read_after(case_id, after)
            left = deadline - loop.time()
            moved = seen_signals >= 0 and signals.version(case_id) != seen_signals
            stopped = stop is not None and stop()
            if events or moved or stopped or left <= 0 or self.cases.stopping:
                notifier.wait_done(case_id, woken)
                return events
            await notifier.wait(case_id, woken, left)

    def answer(
        self, case_id: str, after: int, events: list[CaseEvent]
    ) -> dict[str, Any]:
        return {
            "events": [event_json(e) for e in events],
            "next": str(events[-1].seq) if events else str(after),
            **self.cases.signals.current(case_id),
        }

    # --- Server-Sent Events --------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        token = bearer(request)
        case_id = request.match_info["case_id"]
        await self.cases.tokens.check_reading(token, case_id)
        after = last_event_id(request)
        if self.cases.stopping:
            # A stream now would end at once, and the widget come right back.
            raise Unavailable("The chat service is restarting; connect again.")
        async with self.limits.poll(token, self.limits.client(request)):
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-store",
                    # nginx: pass each message on at once.
                    "X-Accel-Buffering": "no",
                }
            )
            apply_cors(request, response)
            await response.prepare(request)
            try:
                await response.write(PREAMBLE)
                await self._serve(response, token, case_id, after)
            except (ConnectionResetError, asyncio.CancelledError):
                pass  # the widget went away (or the bridge stops)
            except Exception:
                # Begun is begun: no error answer can follow the head. The
                # widget reconnects from its last id and nothing is missed.
                log.exception("the stream of %s broke off", case_id)
        return response

    async def _serve(
        self, response: web.StreamResponse, token: str, case_id: str, after: int
    ) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Widgets that connected together (every page after a restart, a
        # town's newsletter) must not beat or reconnect together: each stream
        # ends at its own time and beats on its own phase, messages or not.
        ends = now + STREAM_SECONDS * random.uniform(0.8, 1.0)
        beat = now + HEARTBEAT_SECONDS * random.uniform(0.1, 1.0)
        tokens = self.cases.tokens
        checked = tokens.revision(case_id)
        seen: int | None = None  # signals version sent; None: nothing sent yet
        while not self.cases.stopping and (now := loop.time()) < ends:
            # The first message goes out at once: what is there, the signals.
            wait = 0.0 if seen is None else max(0.0, min(beat, ends) - now)
            events = await self.news(
                case_id,
                after,
                -1 if seen is None else seen,
                wait,
                stop=partial(_moved, tokens.revision, case_id, checked),
            )
            version = self.cases.signals.version(case_id)
            revoked = tokens.revision(case_id) != checked
            if seen is not None and not events and version == seen and not revoked:
                # Nothing to send: a heartbeat when due, and no token check (a
                # revocation wakes this stream through revision()).
                if loop.time() >= beat:
                    await response.write(b": keep-alive\n\n")
                    while beat <= loop.time():  # one beat after a stall, same phase
                        beat += HEARTBEAT_SECONDS
                continue
            # Taken before the check: a revocation during it wakes us again.
            checked = tokens.revision(case_id)
            try:
                # Revoked or erased meanwhile: the stream ends with the reason.
                await tokens.check_reading(token, case_id)
            except BuergerchatError as e:
                await response.write(message("gone", e.to_json(), None))
                return
            # Read again after the await: the frame's key is what it carries.
            version = self.cases.signals.version(case_id)
            if seen is not None and not events and version == seen:
                continue  # a revocation of another token of the case
            frame, after = self._frame(case_id, after, events, version)
            seen = version
            await response.write(frame)

    def _frame(
        self, case_id: str, after: int, events: list[CaseEvent], version: int
    ) -> tuple[bytes, int]:
        """The ``events`` message and its cursor, encoded once for every stream
        woken by the same read (a hundred widgets of a case: one encoding)."""
        frames = events.frames if isinstance(events, Page) else None
        key = (after, version)
        if frames is not None and key in frames:
            return frames[key]
        body = self.answer(case_id, after, events)
        cursor = int(body["next"])
        frame = message("events", body, cursor), cursor
        if frames is not None:
            frames[key] = frame
        return frame


def _moved(revision: Callable[[str], int], case_id: str, checked: int) -> bool:
    return revision(case_id) != checked


def message(event: str, data: dict[str, Any], cursor: int | None) -> bytes:
    lines = [f"event: {event}"]
    if cursor is not None:
        lines.append(f"id: {cursor}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def last_event_id(request: web.Request) -> int:
    """Where a stream resumes: the browser's ``Last-Event-ID``, else ``?after=``."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    if raw:
        if not raw.isdigit():
            raise InvalidField(
                "Last-Event-ID",
                "The header 'Last-Event-ID' must be a cursor the stream sent "
                "(a whole number).",
            )
        return int(raw)
    return int_param(request, "after", 0)


def int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidField(
            name, f"The parameter '{name}' must be a whole number."
        ) from None
    if value < 0:
        raise InvalidField(name, f"The parameter '{name}' must not be negative.")
    return value
