"""Citizen API v1: status, opening a case, sending and receiving messages."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from ..case import CaseService
from ..clock import routing_now
from ..config import Config
from ..db.models import Case
from ..departments.availability import Availability
from ..departments.model import Department, RoutingRules
from ..departments.office_hours import is_live
from ..errors import (
    HOMESERVER_ERRORS,
    BuergerchatError,
    ConsentRequired,
    InvalidField,
    MissingToken,
    NotJSON,
    TooLarge,
    Unavailable,
)
from ..i18n import LANGUAGES
from ..limits import Limits
from ..metrics import Metrics
from ..plugins import plugin_hooks

log = logging.getLogger("buergerchat.api")
#: How long the ghost's typing shows in Element after the widget's last word.
TYPING_MS = 6000
WEEKDAYS = ("mo", "di", "mi", "do", "fr", "sa", "so")
MAX_JSON_BYTES = 64 * 1024


class Offline(BuergerchatError):
    """Nobody can chat live now: closed, or nobody online. Nothing was created."""

    errcode = "BC_OFFLINE"


#: Deeper JSON than this is refused before Python's parser recurses on it.
MAX_JSON_DEPTH = 20


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx that says what is wrong: too
    large, not JSON, nested too deeply, or text that cannot be stored (a lone
    UTF-16 surrogate such as ``"\\ud800"``, or a NUL character)."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise TooLarge(
            f"The request body is larger than {MAX_JSON_BYTES // 1024} kB. "
            "Send a shorter message."
        )
    raw = await request.read()
    if len(raw) > MAX_JSON_BYTES:
        raise TooLarge(f"The request body is larger than {MAX_JSON_BYTES // 1024} kB.")
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise NotJSON(
            f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep. Send a flat "
            'object like {"body": "..."}.'
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotJSON(
            "The body is not valid JSON. Send a JSON object with "
            "Content-Type: application/json."
        ) from None
    if not isinstance(data, dict):
        raise NotJSON('The body must be a JSON object like {"body": "..."}.')
    check_text(data)
    return data


def _nesting(raw: bytes) -> int:
    """How deeply ``[`` and ``{`` nest in ``raw`` (outside strings)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_text(value: Any, where: str | None = None) -> None:
    """Every string in ``value`` must be storable text: no lone surrogates (they
    cannot be encoded as UTF-8) and no NUL (PostgreSQL refuses it in text)."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise InvalidField(where or "body", f"The field '{where}' {problem}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where)
            check_text(item, where or str(key))
    elif isinstance(value, list):
        for item in value:
            check_text(item, where)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character; remove it and send again."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "contains an invalid character (a lone UTF-16 surrogate); send it as "
            "proper UTF-8 text."
        )
    return None


def field(
    data: dict[str, Any],
    name: str,
    kind: type,
    *,
    required: bool = False,
    max_length: int | None = None,
) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidField(name, f"The field '{name}' is required.")
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidField(name, f"The field '{name}' must be a {kind.__name__}.")
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        raise InvalidField(
            name, f"The field '{name}' is longer than {max_length} characters."
        )
    return value


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken(
            "This needs the chat token: send the header "
            "'Authorization: Bearer <token>' you received when the case was opened."
        )
    return token.strip()


class CitizenAPI:
    def __init__(
        self,
        config: Config,
        cases: CaseService,
        limits: Limits,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.cases = cases
        self.limits = limits
        self.metrics = metrics
        #: What the bots add to GET /status (the scanner: allowed file kinds).
        self.status_fields: dict[str, Any] = {}
        for fields in plugin_hooks(config, "status_fields"):
            self.status_fields.update(fields)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/status", self.status),
            web.post("/api/v1/cases", self.create_case),
            web.get("/api/v1/cases/{case_id}", self.get_case),
            web.post("/api/v1/cases/{case_id}/messages", self.send_message),
            web.post("/api/v1/cases/{case_id}/typing", self.typing),
        ]

    async def _case(self, request: web.Request) -> Case:
        return await self.cases.authorize(
            request.match_info["case_id"], bearer(request)
        )

    async def status(self, request: web.Request) -> web.Response:
        rules = self.config.routing
        now = routing_now()
        known = await self._availability(now)
        departments = []
        for d in self.config.departments:
            hours = is_live(d, rules, now)
            # A department added by a rules reload a moment ago: its hours only.
            now_ = known.get(d.id) or _by_hours(d, rules, now)
            departments.append(
                {
                    "id": d.id,
                    "name": d.name,
                    # A chat started now reaches a person (at once or queued);
                    # "availability" says which, and why not.
                    "live": now_.chat,
                    "availability": now_.as_json(d.id, self._name),
                    # Office hours, whoever is online.
                    "open": hours.live,
                    "until": _iso(hours.until),
                    "next_opening": _iso(hours.next_opening),
                    "note": hours.note,
                    "topics": [{"id": t.id, "label": t.label} for t in d.topics],
                    "hours": {
                        day: [str(p) for p in periods]
                        for day, periods in zip(WEEKDAYS, d.week, strict=True)
                        if periods
                    },
                }
            )
        return web.json_response(
            {
                "town": self.config.town.name,
                "privacy_url": self.config.privacy_url,
                **self.config.accessibility_links,
                # The widget refuses a larger file before uploading it.
                "max_upload_bytes": self.config.homeserver.max_upload_size_mb << 20,
                **self.status_fields,
                "timezone": rules.timezone,
                "now": _iso(now.astimezone(rules.zone)),
                "departments": departments,
            }
        )

    def _name(self, department_id: str) -> str:
        found = self.config.department(department_id)
        return found.name if found else department_id

    async def _availability(self, now: datetime) -> dict[str, Availability]:
        """The router's answer; while routing is starting, office hours alone
        and nobody counted as online (never a promise nobody keeps)."""
        router = self.cases.router
        if router is not None:
            return await router.availability()
        return {
            d.id: _by_hours(d, self.config.routing, now)
            for d in self.config.departments
        }

    async def create_case(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        if data.get("consent") is not True:
            raise ConsentRequired(
                "Please agree to the privacy notice first ('consent': true); "
                "without it we may not store your messages."
            )
        name = field(data, "name", str, max_length=200)
        topic = field(data, "topic", str, max_length=200)
        department_id = field(data, "department", str, required=topic is None)
        if department_id is None:  # a topic alone: its department, else the default
            department = self.config.routing.department_for_topic(topic)
        else:
            department = self.config.department(department_id)
        if department is None:
            known = ", ".join(d.id for d in self.config.departments)
            raise InvalidField(
                "department",
                f"Unknown department '{department_id}'. Choose one of: {known}.",
            )
        language = field(data, "language", str) or "de"
        if language not in LANGUAGES:
            raise InvalidField(
                "language", f"The language must be one of: {', '.join(LANGUAGES)}."
            )
        router = self.cases.router
        if router is None:
            raise Unavailable("Live chat is starting up. Try again in a moment.")
        client_key = await self.limits.admit(
            request,
            ("chats_per_address", "address"),
            ("chats_total", "all"),
            proof="chat",
        )
        decision, case, token = await router.open_case(
            department=department,
            topic=topic,
            citizen_name=(name or "").strip() or None,
            language=language,
            client_key=client_key,
        )
        if case is None or token is None:
            opens = (
                decision.status.next_opening if decision.reason == "closed" else None
            )
            raise Offline(
                _offline_text(department.name, decision.reason),
                next_opening=_iso(opens),
                reason=decision.reason,
            )
        return web.json_response(self._created(case, token, department), status=201)

    def _created(self, case: Case, token: str, requested: Department) -> dict[str, Any]:
        return {
            "case_id": case.case_id,
            "reference": case.reference,
            "token": token,
            "state": case.state,
            "department": case.department,
            # Not the department asked for: its fallback took the chat (the
            # timeline says so too); the citizen may leave the requested
            # department a message instead.
            "requested_department": requested.id,
            "served_by": (
                {"id": case.department, "name": self._name(case.department)}
                if case.department != requested.id
                else None
            ),
            "queue": _queue(case),
        }

    async def get_case(self, request: web.Request) -> web.Response:
        case = await self._case(request)
        department = self.config.department(case.department)
        return web.json_response(
            {
                "case_id": case.case_id,
                "reference": case.reference,
                "state": case.state,
                "department": {
                    "id": case.department,
                    "name": department.name if department else None,
                },
                "topic": case.topic,
                "topic_label": self.config.routing.topic_label(case.topic),
                "closed": case.closed_at is not None,
                "queue": _queue(case),
            }
        )

    async def send_message(self, request: web.Request) -> web.Response:
        case = await self._case(request)
        data = await read_json(request)
        body = field(
            data,
            "body",
            str,
            required=True,
            max_length=self.config.citizen.max_message_length,
        )
        client_id = field(data, "client_id", str, required=True, max_length=100)
        await self.limits.hit("messages_per_case", case.case_id)
        started = time.monotonic()
        event = await self.cases.post_citizen_message(case, client_id, body)
        if self.metrics is not None and event.matrix_event_id is not None:
            self.metrics.citizen_message(time.monotonic() - started)
        if event.matrix_event_id is None:
            return web.json_response(
                {"event_id": None, "status": "pending", "cursor": str(event.seq)},
                status=202,
            )
        return web.json_response(
            {"event_id": event.matrix_event_id, "cursor": str(event.seq)}, status=201
        )

    async def typing(self, request: web.Request) -> web.Response:
        """The citizen types (or stopped): the ghost types in the case room,
        so staff see it in Element. At most every few seconds is enough."""
        case = await self._case(request)
        data = await read_json(request)
        typing = data.get("typing")
        if not isinstance(typing, bool):
            raise InvalidField(
                "typing", "Send {'typing': true} while typing, false when stopped."
            )
        await self.limits.hit("typing_per_case", case.case_id)
        # A close racing this: the call never joins, Synapse refuses, caught.
        if case.closed_at is None and case.room_id:
            try:
                await self.cases.ghost_typing(case, TYPING_MS if typing else 0)
            except HOMESERVER_ERRORS as e:  # a typing notice is not worth a retry
                log.info("typing of %s not shown: %s", case.reference, e)
        return web.json_response({"typing": typing})


def _by_hours(
    department: Department, rules: RoutingRules, now: datetime
) -> Availability:
    """Office hours alone, nobody counted as online (never a promise)."""
    hours = is_live(department, rules, now)
    return Availability(
        "nobody_online" if hours.live else "closed",
        department.id,
        hours.until,
        hours.next_opening,
    )


def _queue(case: Case) -> dict[str, int] | None:
    """Position and estimated wait while the case waits in its department's
    queue, or in a partner's, to which it was handed over (bots/handover)."""
    waiting = case.state in ("queued", "handed_over") and not case.queue_closed
    if not waiting or case.queue_position is None:
        return None
    return {
        "position": case.queue_position,
        "estimated_wait_minutes": case.queue_wait_minutes or 0,
    }


def _offline_text(department: str, reason: str) -> str:
    if reason == "closed":
        why = (
            f"{department} ist gerade nicht im Live-Chat erreichbar (außerhalb der "
            "Sprechzeiten). / "
            f"{department} is outside its live chat hours right now."
        )
    else:
        why = (
            f"Bei {department} ist gerade niemand im Live-Chat erreichbar. / "
            f"Nobody at {department} is available for live chat right now."
        )
    return (
        f"{why} Hinterlassen Sie eine Nachricht mit POST /api/v1/offline-messages; "
        "wir antworten per E-Mail oder Telefon. / Leave a message with "
        "POST /api/v1/offline-messages; we answer by e-mail or phone."
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
