"""``!video`` and ``!video end`` worked off again: the inbox retries a transaction
whose handler lost the database half-way (SQLite locked on a busy machine). The
retry must finish the same call, not answer "a call is running" or "there is no
call" and leave staff without the notice they wait for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"


def widget_events(h: Harness, room_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in h.hs.rooms[room_id].timeline
        if e["type"] == "im.vector.modular.widgets"
    ]


def notices(h: Harness, room_id: str) -> list[str]:
    return [c["body"] for c in h.hs.messages(room_id) if c.get("msgtype") == "m.notice"]


def fail_once(h: Harness, monkeypatch: Any, after: int = 0) -> list[int]:
    """The case service's next system line (after ``after`` good ones) fails as
    a locked SQLite database does; returns a counter of failures."""
    real = h.cases.add_system_event
    failed: list[int] = []
    calls = [0]

    async def flaky(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        if not failed and calls[0] > after:
            failed.append(1)
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return await real(*args, **kw)

    monkeypatch.setattr(h.cases, "add_system_event", flaky)
    return failed


async def command_twice(h: Harness, room_id: str, body: str, event_id: str) -> None:
    """The command's event worked off, failing once, then again (same event)."""
    raw = {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": ANNA,
        "event_id": event_id,
        "content": {"msgtype": "m.text", "body": body},
    }
    try:
        await h.deliver(dict(raw))
    except OperationalError:
        pass
    else:
        raise AssertionError("the fault was not injected")
    await h.deliver(dict(raw))


async def test_video_start_and_end_retried_after_a_locked_database_finish_once(
    tmp_path: Path, monkeypatch: Any
) -> None:
    async with harness(tmp_path) as h:
        case, _ = await h.open_case()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        room_id = fresh.room_id
        video = h.bot("video")

        fail_once(h, monkeypatch)
        await command_twice(h, room_id, "!video", "$start")
        started = await video.calls.running(case.case_id)
        assert started is not None
        widgets = widget_events(h, room_id)
        assert {w["state_key"] for w in widgets} == {started.widget_id}
        assert all(
            started.conference_id in w["content"]["url"]
            or started.conference_id in str(w["content"]["data"])
            for w in widgets
        )
        running = [n for n in notices(h, room_id) if "Videoberatung läuft" in n]
        assert len(running) == 1, notices(h, room_id)
        lines = await h.system_lines(case)
        assert sum("Video" in line for line in lines) == 1, lines

        monkeypatch.undo()
        fail_once(h, monkeypatch)
        await command_twice(h, room_id, "!video end", "$end")
        assert await video.calls.running(case.case_id) is None
        ended = [n for n in notices(h, room_id) if "ist beendet" in n]
        assert len(ended) == 1, notices(h, room_id)
        assert not any("kein" in n.lower() for n in notices(h, room_id))
        last = widget_events(h, room_id)[-1]
        assert last["state_key"] == started.widget_id and last["content"] == {}

        # A second, new !video is a new call with its own widget.
        monkeypatch.undo()
        await h.staff_says(case, ANNA, "!video")
        again = await video.calls.running(case.case_id)
        assert again is not None and again.widget_id != started.widget_id
        assert again.conference_id != started.conference_id
