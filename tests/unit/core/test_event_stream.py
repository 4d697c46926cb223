"""Server-Sent Events (GET …/stream) and the read a herd of widgets shares
(bridge/api/events.py, bridge.timeline.Timeline.read_after): a stream gets what
is new as it happens, resumes after Last-Event-ID without a gap or a repeat,
ends when the token is revoked, counts against the poll limits; a hundred
long-polls woken by one message read the database once at most, and a read that began
before a message was written is never handed to a poll that message woke."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import event

from bridge.api import events as events_module
from bridge.timeline import PAGE
from tests.harness import harness

ANNA = "@anna.schmidt:buergerchat.localhost"


async def read_messages(
    response: ClientResponse, count: int, seconds: float = 10
) -> list[dict[str, Any]]:
    """The next ``count`` SSE messages (comments skipped) as event, id, data."""
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(seconds):
        while len(messages) < count:
            raw = await response.content.readline()
            assert raw, f"the stream ended after {messages}"
            line = raw.decode().rstrip("\n")
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(": ")
                current[name] = json.loads(value) if name == "data" else value
    return messages


async def test_a_stream_pushes_resumes_and_ends_with_its_token(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        auth = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1/cases/{case.case_id}/stream"
        response = await client.get(url, headers=auth)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        (first,) = await read_messages(response, 1)
        # At once: everything so far (the opening lines) and the signals.
        assert first["event"] == "events" and first["data"]["events"]
        assert "signals" in first["data"] and first["id"] == first["data"]["next"]
        await h.staff_says(case, ANNA, "Erste Antwort")
        (pushed,) = await read_messages(response, 1)
        assert [e["body"] for e in pushed["data"]["events"]] == ["Erste Antwort"]
        last_id = pushed["id"]
        response.close()

        # Missed while away: a new stream from Last-Event-ID has exactly that.
        await h.staff_says(case, ANNA, "Zweite Antwort")
        resumed = await client.get(url, headers={**auth, "Last-Event-ID": last_id})
        (again,) = await read_messages(resumed, 1)
        assert [e["body"] for e in again["data"]["events"]] == ["Zweite Antwort"]

        # Revoked: the open stream says so at once (nothing new needed to
        # wake it) and ends; a new one is refused.
        await h.cases.tokens.revoke(case.case_id)
        (gone,) = await read_messages(resumed, 1, seconds=3)
        assert gone["event"] == "gone"
        assert gone["data"]["errcode"] == "BC_UNKNOWN_TOKEN"
        assert await resumed.content.read() == b""
        refused = await client.get(url, headers=auth)
        assert refused.status == 401


async def test_stream_input_errors_and_limits(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        auth = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1/cases/{case.case_id}/stream"
        bad = await client.get(url, headers={**auth, "Last-Event-ID": "x1"})
        body = await bad.json()
        assert bad.status == 400 and body["field"] == "Last-Event-ID", body
        assert (await client.get(url)).status == 401
        # Held streams count like held long-polls (limits.polls_per_token).
        cap = h.ctx.limits.settings.polls_per_token
        held = [await client.get(url, headers=auth) for _ in range(cap)]
        for response in held:
            await read_messages(response, 1)
        over = await client.get(url, headers=auth)
        answer = await over.json()
        assert over.status == 429 and answer["errcode"] == "BC_RATE_LIMITED"
        for response in held:
            response.close()


async def test_a_stream_sends_heartbeats(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(events_module, "HEARTBEAT_SECONDS", 0.2)
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        response = await client.get(
            f"/api/v1/cases/{case.case_id}/stream",
            headers={"Authorization": f"Bearer {token}"},
        )
        await read_messages(response, 1)
        async with asyncio.timeout(5):
            while (await response.content.readline()) != b": keep-alive\n":
                pass
        response.close()


async def test_streams_opened_together_beat_apart(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Widgets that connect together (every page after a restart) must not send
    and receive their heartbeats together: each stream beats on its own phase."""
    monkeypatch.setattr(events_module, "HEARTBEAT_SECONDS", 1.0)
    async with harness(tmp_path) as h, h.api() as client:
        loop = asyncio.get_running_loop()

        async def phase(response: ClientResponse, connected: float) -> float:
            while (await response.content.readline()) != b": keep-alive\n":
                pass
            return loop.time() - connected

        streams: list[ClientResponse] = []
        readers: list[asyncio.Task[float]] = []
        for _ in range(8):
            case, token = await h.open_case()
            response = await client.get(
                f"/api/v1/cases/{case.case_id}/stream",
                headers={"Authorization": f"Bearer {token}"},
            )
            await read_messages(response, 1)
            # Read from now on: a beat that comes while the next stream opens
            # is timed when it comes, not when the last stream is open.
            readers.append(asyncio.create_task(phase(response, loop.time())))
            streams.append(response)
        async with asyncio.timeout(5):
            phases = await asyncio.gather(*readers)
        # Without a phase of its own each stream beats 1.0 s after it began;
        # eight phases drawn from 0.1-1.0 s lie within 0.1 s of each other
        # about once in 600,000 runs.
        assert max(phases) - min(phases) > 0.1, phases
        for response in streams:
            response.close()


async def test_streams_woken_by_one_message_share_one_encoding(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A message to a case with three open streams is read and encoded once;
    each stream gets the same bytes."""
    encoded: list[int] = []
    answer = events_module.CaseEvents.answer

    def counted(self: Any, case_id: str, after: int, events: Any) -> Any:
        encoded.append(after)
        return answer(self, case_id, after, events)

    monkeypatch.setattr(events_module.CaseEvents, "answer", counted)
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        url = f"/api/v1/cases/{case.case_id}/stream"
        auth = {"Authorization": f"Bearer {token}"}
        streams = [await client.get(url, headers=auth) for _ in range(3)]
        for response in streams:
            await read_messages(response, 1)
        encoded.clear()
        await h.staff_says(case, ANNA, "Für alle drei")
        got = [(await read_messages(r, 1))[0] for r in streams]
        assert [m["data"]["events"][-1]["body"] for m in got] == ["Für alle drei"] * 3
        assert len({json.dumps(m, sort_keys=True) for m in got}) == 1
        assert len(encoded) == 1
        for response in streams:
            response.close()


@pytest.mark.parametrize("known", [True, False], ids=["from-memory", "one-read"])
async def test_a_herd_of_polls_reads_the_database_at_most_once(
    tmp_path: Path, known: bool
) -> None:
    """A hundred polls woken by one message: it is handed to them from memory
    (this process wrote it right after what they had), or, when the process
    does not know what lay before it (restarted, another process wrote),
    from one shared read."""
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        auth = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1/cases/{case.case_id}/events"
        first = await (await client.get(url, headers=auth)).json()
        cursor = first["next"]

        async def poll() -> list[str]:
            answer = await client.get(
                url, params={"after": cursor, "timeout": 10}, headers=auth
            )
            return [e["body"] for e in (await answer.json())["events"]]

        h.ctx.limits.settings = replace(
            h.ctx.limits.settings, polls_per_token=1000, polls_per_address=1000
        )
        herd = [asyncio.create_task(poll()) for _ in range(100)]
        await asyncio.sleep(0.5)
        reads: list[str] = []

        def count(conn: Any, cursor_: Any, sql: str, *args: Any) -> None:
            if "FROM case_events" in sql and "case_events.seq >" in sql:
                reads.append(sql)

        if not known:
            h.cases.notifier.forget(case.case_id)
        event.listen(h.store.engine.sync_engine, "before_cursor_execute", count)
        try:
            await h.staff_says(case, ANNA, "Für alle")
            answers = await asyncio.gather(*herd)
        finally:
            event.remove(h.store.engine.sync_engine, "before_cursor_execute", count)
        assert all(a == ["Für alle"] for a in answers), answers
        assert len(reads) == (0 if known else 1), len(reads)


async def test_a_read_older_than_the_wake_up_is_not_shared(tmp_path: Path) -> None:
    """A read in flight when a message is written does not see it: a poll woken
    by that message must read again, not join the older read."""
    async with harness(tmp_path) as h:
        case, _token = await h.open_case()
        timeline = h.cases.timeline
        top = (await timeline.read_after(case.case_id, 0))[-1].seq
        store = timeline.store
        real = store.events_after
        started, release = asyncio.Event(), asyncio.Event()

        async def slow(case_id: str, after: int, limit: int = 200) -> Any:
            rows = await real(case_id, after, limit)  # before the message
            started.set()
            await release.wait()
            return rows

        store.events_after = slow  # type: ignore[method-assign]
        older = asyncio.create_task(timeline.read_after(case.case_id, top))
        await started.wait()
        store.events_after = real  # type: ignore[method-assign]
        await h.staff_says(case, ANNA, "Während gelesen wird")
        try:
            async with asyncio.timeout(5):  # joining the older read waits forever
                woken = await timeline.read_after(case.case_id, top)
        finally:
            release.set()
        assert [e.body for e in woken] == ["Während gelesen wird"]
        assert await older == []


async def test_a_full_page_does_not_mark_the_case_as_read_to_its_end(
    tmp_path: Path,
) -> None:
    """More events than one page: the page's last cursor is not "nothing
    beyond", so the next read is not skipped."""
    async with harness(tmp_path) as h:
        case, _token = await h.open_case()
        timeline = h.cases.timeline
        for n in range(PAGE + 20):
            await timeline.add(
                case.case_id, type="system", sender="system", body=f"{n}"
            )
        # As after a restart, or with the events written by another process:
        # this process knows nothing of the case's cursor.
        h.cases.notifier.resync()
        page = await timeline.read_after(case.case_id, 0)
        assert len(page) == PAGE
        assert not h.cases.notifier.nothing_after(case.case_id, page[-1].seq)
        rest = await timeline.read_after(case.case_id, page[-1].seq)
        assert rest and rest[-1].body == f"{PAGE + 19}"
        assert h.cases.notifier.nothing_after(case.case_id, rest[-1].seq)


async def test_a_token_revoked_during_its_check_is_not_trusted_after(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        case, token = await h.open_case()
        tokens = h.cases.tokens
        real = tokens._check_chat
        asked, answer = asyncio.Event(), asyncio.Event()

        async def slow(token_: str, case_id: str) -> Any:
            found = await real(token_, case_id)  # still valid when read
            asked.set()
            await answer.wait()
            return found

        tokens._check_chat = slow  # type: ignore[method-assign]
        checking = asyncio.create_task(tokens.check_reading(token, case.case_id))
        await asked.wait()
        await tokens.revoke(case.case_id)  # commits while the check is out
        answer.set()
        await checking
        tokens._check_chat = real  # type: ignore[method-assign]
        assert not tokens._trusted  # not trusted: the next read asks again
        try:
            await tokens.check_reading(token, case.case_id)
        except Exception as e:  # noqa: BLE001
            assert getattr(e, "errcode", "") == "BC_UNKNOWN_TOKEN"
        else:
            raise AssertionError("a revoked token was accepted")
