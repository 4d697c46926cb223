"""The live chat path end to end: citizen API ↔ bridge ↔ real Synapse ↔ staff client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomMessageText

from .stack import Stack

pytestmark = pytest.mark.e2e


async def api(
    stack: Stack,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json: Any = None,
    data: bytes | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, stack.bridge_url + path, json=json, data=data, headers=headers
        ) as response:
            return response.status, await response.json()


async def open_case(stack: Stack, **extra: Any) -> dict[str, Any]:
    status, body = await api(
        stack,
        "POST",
        "/api/v1/cases",
        json={
            "department": "buergerbuero",
            "consent": True,
            "name": "Eva Muster",
            **extra,
        },
    )
    assert status == 201, body
    return body


async def join_case_room(client: AsyncClient, reference: str) -> str:
    """Sync until the invite to the case room arrives, then join it."""
    for _ in range(40):
        response = await client.sync(timeout=500)
        for room_id, room in response.rooms.invite.items():
            names = [e.name for e in room.invite_state if hasattr(e, "name") and e.name]
            if any(reference in n for n in names):
                await client.join(room_id)
        for room_id, room in client.rooms.items():
            if reference in (room.name or ""):
                return room_id
    raise AssertionError(f"no invite for {reference}")


async def wait_for_room_event(
    client: AsyncClient,
    room_id: str,
    predicate: Callable[[Any], bool],
    *,
    what: str,
    rounds: int = 40,
) -> Any:
    """Sync ``client`` until an event in ``room_id``'s timeline matches.

    Bounded by time (``rounds`` × 1.5 s, at least a minute), not by the number of
    syncs: on a busy CI machine presence and typing wake a sync early, and a
    timeline marked ``limited`` may skip events, so then the room's recent
    history is read as well."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(60.0, rounds * 1.5)
    while loop.time() < deadline:
        response = await client.sync(timeout=500)
        room = response.rooms.join.get(room_id)
        for event in room.timeline.events if room else []:
            if predicate(event):
                return event
        if room is not None and room.timeline.limited:
            history = await client.room_messages(room_id, start="", limit=100)
            for event in getattr(history, "chunk", []):
                if predicate(event):
                    return event
    raise AssertionError(f"{what} never reached {room_id}")


async def wait_for_message(
    client: AsyncClient, room_id: str, body: str
) -> RoomMessageText:
    return await wait_for_room_event(
        client,
        room_id,
        lambda e: isinstance(e, RoomMessageText) and e.body == body,
        what=repr(body),
    )


async def wait_for_event(
    stack: Stack,
    case: dict[str, Any],
    predicate: Any,
    after: str = "0",
    within: float = 120.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Long-poll the case's events until one matches, for ``within`` seconds
    (a deadline, not a number of polls: the bridge answers an empty poll at
    80-100 % of its timeout, so twenty polls were 90 s or 100 s)."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        status, body = await api(
            stack,
            "GET",
            f"/api/v1/cases/{case['case_id']}/events?after={after}&timeout=5",
            token=case["token"],
        )
        assert status == 200, body
        seen.extend(body["events"])
        after = body["next"]
        for event in body["events"]:
            if predicate(event):
                return event, seen
    raise AssertionError(f"event never arrived; saw {seen}")


async def test_status_lists_departments(stack: Stack) -> None:
    """GET /status names every department, live now (Thursday 10:00) until 12:00,
    with the next opening at 14:00, its topics and weekly hours."""
    status, body = await api(stack, "GET", "/api/v1/status")
    assert status == 200
    departments = {d["id"]: d for d in body["departments"]}
    assert {"buergerbuero", "bauen", "standesamt"} <= set(departments)
    office = departments["buergerbuero"]
    assert office["live"] is True
    assert office["until"].startswith("2026-11-19T12:00:00+01:00")
    assert office["next_opening"].startswith("2026-11-19T14:00:00+01:00")
    assert "09:00-12:00" in office["hours"]["do"]
    assert office["topics"] and all("label" in t for t in office["topics"])
    # The widget checks a file against these before uploading it.
    assert body["max_upload_bytes"] == 20 * 1024 * 1024  # homeserver default 20 MB
    assert {"png", "jpeg", "pdf", "docx"} <= set(body["allowed_file_kinds"])


async def test_citizen_and_staff_chat_both_ways(
    stack: Stack, anna: AsyncClient
) -> None:
    """A citizen message reaches the staff client as the ghost user, in a room named
    after the case; the staff answer reaches the citizen's event stream."""
    case = await open_case(stack)
    assert case["reference"].startswith("BC-")
    room_id = await join_case_room(anna, case["reference"])
    room = anna.rooms[room_id]
    assert case["reference"] in (room.name or room.display_name)
    assert "Bürgerbüro" in (room.name or room.display_name)

    status, sent = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": "Mein Ausweis läuft ab.", "client_id": "m-1"},
    )
    assert status == 201 and sent["event_id"].startswith("$")
    event = await wait_for_message(anna, room_id, "Mein Ausweis läuft ab.")
    assert event.sender.startswith("@bc_")
    assert event.event_id == sent["event_id"]

    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "Gerne, Frau Muster."}
    )
    answer, _ = await wait_for_event(stack, case, lambda e: e["sender"] == "staff")
    assert answer["body"] == "Gerne, Frau Muster."
    assert answer["sender_name"] == "Anna Schmidt"


async def test_same_client_id_sends_once(stack: Stack, anna: AsyncClient) -> None:
    """Resending with the same client_id returns the same event id and the staff
    see the message once."""
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    path = f"/api/v1/cases/{case['case_id']}/messages"
    body = {"body": f"Nur einmal {uuid.uuid4()}", "client_id": "same"}
    results = await asyncio.gather(
        *[api(stack, "POST", path, token=case["token"], json=body) for _ in range(3)]
    )
    event_ids = {r[1].get("event_id") for r in results}
    assert len(event_ids) == 1 and None not in event_ids
    await wait_for_message(anna, room_id, body["body"])
    messages = await anna.room_messages(room_id, start="", limit=50)
    same = [e for e in messages.chunk if getattr(e, "body", None) == body["body"]]
    assert len(same) == 1


async def test_reload_with_cursor_misses_and_repeats_nothing(stack: Stack) -> None:
    """Reading from a saved cursor returns exactly the events after it."""
    case = await open_case(stack)
    path = f"/api/v1/cases/{case['case_id']}/messages"
    for i in range(3):
        await api(
            stack,
            "POST",
            path,
            token=case["token"],
            json={"body": f"Nachricht {i}", "client_id": f"r{i}"},
        )
    _, first = await api(
        stack,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after=0",
        token=case["token"],
    )
    all_events = first["events"]
    middle = all_events[1]["cursor"]
    _, rest = await api(
        stack,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after={middle}",
        token=case["token"],
    )
    assert [e["cursor"] for e in rest["events"]] == [
        e["cursor"] for e in all_events[2:]
    ]
    assert rest["next"] == all_events[-1]["cursor"]


async def test_long_poll_returns_at_once_on_new_event(stack: Stack) -> None:
    """A waiting long-poll returns as soon as a message arrives, not at its timeout."""
    case = await open_case(stack)
    _, now = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}/events", token=case["token"]
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(
        api(
            stack,
            "GET",
            f"/api/v1/cases/{case['case_id']}/events?after={now['next']}&timeout=25",
            token=case["token"],
        )
    )
    await asyncio.sleep(0.5)
    await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": "Hallo?", "client_id": "lp"},
    )
    status, body = await poll
    assert status == 200 and [e["body"] for e in body["events"]] == ["Hallo?"]
    assert loop.time() - started < 20


@pytest.mark.parametrize(
    ("payload", "status", "errcode"),
    [
        ({"department": "buergerbuero"}, 400, "BC_CONSENT_REQUIRED"),
        ({"department": "buergerbuero", "consent": "yes"}, 400, "BC_CONSENT_REQUIRED"),
        ({"department": "nope", "consent": True}, 400, "BC_INVALID_FIELD"),
        ({"consent": True}, 400, "BC_INVALID_FIELD"),
        (
            {"department": "buergerbuero", "consent": True, "language": "fr"},
            400,
            "BC_INVALID_FIELD",
        ),
        ([1, 2], 400, "BC_NOT_JSON"),
    ],
)
async def test_bad_case_requests(
    stack: Stack, payload: Any, status: int, errcode: str
) -> None:
    """Opening a case without consent or with bad fields: refused with a JSON error."""
    got, body = await api(stack, "POST", "/api/v1/cases", json=payload)
    assert (got, body["errcode"]) == (status, errcode)
    assert body["error"]


async def test_token_errors(stack: Stack) -> None:
    """Missing/bad token → 401, another case's token → 403, unknown case → 404."""
    one, two = await open_case(stack), await open_case(stack)
    path = f"/api/v1/cases/{one['case_id']}/events"
    assert (await api(stack, "GET", path))[0] == 401
    status, body = await api(stack, "GET", path, token="wrong")
    assert (status, body["errcode"]) == (401, "BC_UNKNOWN_TOKEN")
    status, body = await api(stack, "GET", path, token=two["token"])
    assert (status, body["errcode"]) == (403, "BC_FORBIDDEN")
    status, body = await api(
        stack, "GET", "/api/v1/cases/c_nothere/events", token=one["token"]
    )
    assert (status, body["errcode"]) == (404, "BC_NOT_FOUND")


async def test_junk_and_oversized_bodies(stack: Stack) -> None:
    """Malformed and oversized bodies get 400/413 JSON errors, never a stack trace."""
    case = await open_case(stack)
    path = f"/api/v1/cases/{case['case_id']}/messages"
    status, body = await api(
        stack, "POST", path, token=case["token"], data=b"\xff{junk"
    )
    assert (status, body["errcode"]) == (400, "BC_NOT_JSON")
    status, body = await api(
        stack,
        "POST",
        path,
        token=case["token"],
        json={"body": "x" * 5000, "client_id": "long"},
    )
    assert (status, body["errcode"], body["field"]) == (400, "BC_INVALID_FIELD", "body")
    status, body = await api(
        stack,
        "POST",
        path,
        token=case["token"],
        data=b'{"body": "' + b"x" * 200_000 + b'"}',
    )
    assert (status, body["errcode"]) == (413, "BC_TOO_LARGE")
    status, body = await api(
        stack, "POST", path, token=case["token"], json={"client_id": "no-body"}
    )
    assert (status, body["field"]) == (400, "body")
    status, body = await api(stack, "GET", "/api/v1/nothing")
    assert (status, body["errcode"]) == (404, "BC_NOT_FOUND")


async def test_health_and_openapi(stack: Stack) -> None:
    """/healthz reports each part (database, homeserver, inbox, deliveries, clamd,
    mail outbox, job queue) as working; the OpenAPI document lists every citizen
    route."""
    status, body = await api(stack, "GET", "/healthz")
    assert status == 200 and body["status"] == "ok", body
    parts = {
        "database",
        "homeserver",
        "appservice_inbox",
        "deliveries",
        "clamd",
        "mail_outbox",
        "jobs",
    }
    assert parts <= set(body), body
    assert all(body[p]["ok"] is True for p in parts), body
    status, spec = await api(stack, "GET", "/api/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    for path in (
        "/api/v1/status",
        "/api/v1/cases",
        "/api/v1/cases/{case_id}/messages",
        "/api/v1/cases/{case_id}/events",
        "/api/v1/cases/{case_id}/video",
        "/healthz",
    ):
        assert path in spec["paths"], path


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus' text format (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


async def scrape(stack: Stack) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.bridge_url + "/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            return await response.text()


async def test_metrics_count_what_happens(stack: Stack, anna: AsyncClient) -> None:
    """/metrics (from loopback) counts a chat opened, a message each way with its
    delivery time, the cases per state and every /healthz part as up."""
    before = await scrape(stack)
    case = await open_case(stack)
    room_id = await join_case_room(anna, case["reference"])
    status, _ = await api(
        stack,
        "POST",
        f"/api/v1/cases/{case['case_id']}/messages",
        token=case["token"],
        json={"body": "Zählt das?", "client_id": "metrics-1"},
    )
    assert status == 201
    await wait_for_message(anna, room_id, "Zählt das?")
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "Ja, es zählt."}
    )
    await wait_for_event(stack, case, lambda e: e["body"] == "Ja, es zählt.")
    after = await scrape(stack)

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("buergerchat_case_events_total", kind="opened") >= 1
    assert grew("buergerchat_case_events_total", kind="citizen_message") >= 1
    assert grew("buergerchat_case_events_total", kind="staff_message") >= 1
    for direction in ("citizen_to_staff", "staff_to_citizen"):
        count = "buergerchat_delivery_seconds_count"
        assert grew(count, direction=direction) >= 1, direction
        total = metric(after, "buergerchat_delivery_seconds_sum", direction=direction)
        assert 0 < total < 3600, (direction, total)
    assert metric(after, "buergerchat_cases", state="live") >= 1
    for part in ("database", "homeserver", "appservice_inbox", "jobs", "clamd"):
        assert metric(after, "buergerchat_part_up", part=part) == 1, part
    assert "buergerchat_part" in after and 'field="lag_seconds"' in after
