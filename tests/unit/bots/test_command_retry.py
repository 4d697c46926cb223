"""Every staff command, broken off at each step and worked off again.

The inbox retries an appservice transaction whose handler lost Synapse or the
database half-way (bridge.appservice.RETRY_ERRORS). For each command and each of
its fallible steps — every call to the homeserver, every system line, every
state move — this breaks the first attempt there and works the same event off
again. What staff, the team and the citizen then see must be exactly what one
clean attempt shows: no answer missing ("there is no call" after the call was
half ended), none twice, the case in the same state."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientConnectionError
from sqlalchemy.exc import OperationalError

from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"

Setup = Callable[[Harness, Any], Awaitable[None]]


async def nothing(h: Harness, case: Any) -> None:
    pass


async def claimed(h: Harness, case: Any) -> None:
    await h.staff_says(case, ANNA, "!claim")


async def in_video(h: Harness, case: Any) -> None:
    await h.staff_says(case, ANNA, "!video")


async def blocked(h: Harness, case: Any) -> None:
    await h.staff_says(case, ANNA, "!block Beleidigungen")


#: (setup, the command broken off and retried)
SCENARIOS: dict[str, tuple[Setup, str]] = {
    "claim": (nothing, "!claim"),
    "transfer": (claimed, "!transfer bauen Bitte Bauantrag prüfen"),
    "close": (claimed, "!close"),
    "goodbye": (claimed, "!goodbye Danke, alles erledigt."),
    "block": (claimed, "!block Beleidigungen"),
    "unblock": (blocked, "!unblock"),
    "video": (claimed, "!video"),
    "audio": (claimed, "!audio"),
    "video end": (in_video, "!video end"),
}


class Faults:
    """Counts the fallible steps and breaks the ``at``-th one (0: none)."""

    def __init__(self, h: Harness, monkeypatch: Any, at: int) -> None:
        self.at, self.steps = at, 0
        real_call = h.hs._call

        def call(who: str, name: str, *args: Any) -> None:
            real_call(who, name, *args)
            self._step(ClientConnectionError(f"Synapse went away at {name}"))

        monkeypatch.setattr(h.hs, "_call", call)
        for owner, name in (
            (h.cases, "add_system_event"),
            (h.cases.lifecycle, "transition"),
        ):
            self._wrap(monkeypatch, owner, name)

    def _wrap(self, monkeypatch: Any, owner: Any, name: str) -> None:
        real = getattr(owner, name)

        async def wrapped(*args: Any, **kw: Any) -> Any:
            self._step(OperationalError(name, {}, Exception("database is locked")))
            return await real(*args, **kw)

        monkeypatch.setattr(owner, name, wrapped)

    def _step(self, error: Exception) -> None:
        self.steps += 1
        if self.steps == self.at:
            raise error


def seen(h: Harness, reference: str, reference_room: str) -> dict[str, Any]:
    """What people see: every room's messages and widget states, in order, with
    the case reference and Matrix ids made comparable across runs."""
    rooms = {}
    for room in h.hs.rooms.values():
        name = next((a for a, r in h.hs.aliases.items() if r == room.room_id), "?")
        if name.startswith("#bc_case") or room.room_id == reference_room:
            name = "case room"
        lines = []
        for e in room.timeline:
            if e["type"] == "m.room.message":
                lines.append(e["content"].get("body", ""))
            elif e["type"] == "im.vector.modular.widgets":
                lines.append("widget " + ("on" if e["content"] else "off"))
        rooms[name] = [re.sub(r"[!$@#][\w.=-]+:[\w.-]+", "<id>", x) for x in lines]
    same = {k: [x.replace(reference, "<ref>") for x in v] for k, v in rooms.items()}
    return {"rooms": same}


async def outcome(
    tmp_path: Path, monkeypatch: Any, setup: Setup, command: str, at: int
) -> tuple[dict[str, Any], int]:
    async with harness(tmp_path) as h:
        case, _ = await h.open_case()
        await setup(h, case)
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        raw = {
            "type": "m.room.message",
            "room_id": fresh.room_id,
            "sender": ANNA,
            "event_id": "$the-command",
            "content": {"msgtype": "m.text", "body": command},
        }
        with monkeypatch.context() as m:
            faults = Faults(h, m, at)
            try:
                await h.deliver(dict(raw))
            except (ClientConnectionError, OperationalError):
                assert at, "a clean attempt failed"
                faults.at = 0
                await h.deliver(dict(raw))  # the inbox works it off again
            # else: a subscriber's failure was logged and its reaction is a
            # job, worked off below, as the job queue does.
        for _ in range(3):  # what waits for Synapse goes out by its job
            h.clock.advance(minutes=1)
            await h.run_jobs()
        after = await h.store.get_case(case.case_id)
        assert after is not None
        result = seen(h, case.reference, fresh.room_id)
        result["state"] = (after.state, after.department, after.assignee)
        result["system"] = [
            line.replace(case.reference, "<ref>") for line in await h.system_lines(case)
        ]
        return result, faults.steps


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_a_command_broken_off_at_any_step_and_retried_ends_as_one_clean_run(
    tmp_path: Path, monkeypatch: Any, scenario: str
) -> None:
    setup, command = SCENARIOS[scenario]
    clean, steps = await outcome(tmp_path / "clean", monkeypatch, setup, command, 0)
    assert steps >= 1, "the command touched nothing that can fail"
    for at in range(1, steps + 1):
        folder = tmp_path / f"at{at}"
        retried, _ = await outcome(folder, monkeypatch, setup, command, at)
        assert retried == clean, f"{command} broken off at step {at} of {steps}"
