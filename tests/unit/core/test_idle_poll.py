"""A widget's long-poll, re-issued while nothing happens, touches no database
(issue "Scale": 5,000 connected widgets) — and still misses nothing: a new event
wakes it, a revoked token is refused at once, a cursor from the future hides
nothing. Statements are counted on the engine itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.harness import harness

ANNA = "@anna.schmidt:buergerchat.localhost"


async def test_an_idle_poll_reads_nothing_and_misses_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        case, token = await h.open_case()
        auth = {"Authorization": f"Bearer {token}"}
        url = f"/api/v1/cases/{case.case_id}/events"

        async def poll(after: str, wait: int = 0) -> tuple[int, Any]:
            answer = await client.get(
                url, params={"after": after, "timeout": wait}, headers=auth
            )
            return answer.status, await answer.json()

        statements: list[str] = []

        def count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            statements.append(sql)

        status, first = await poll("0")
        assert status == 200 and first["events"], first
        cursor = first["next"]
        event.listen(h.store.engine.sync_engine, "before_cursor_execute", count)
        try:
            for _ in range(3):  # the widget re-issues it again and again
                status, idle = await poll(cursor, wait=1)
                assert (status, idle["events"], idle["next"]) == (200, [], cursor)
            assert statements == [], statements
        finally:
            event.remove(h.store.engine.sync_engine, "before_cursor_execute", count)

        # A staff message wakes a waiting poll and is read.
        waiting = asyncio.create_task(poll(cursor, wait=10))
        await asyncio.sleep(0.2)
        await h.staff_says(case, ANNA, "Guten Tag, wie kann ich helfen?")
        status, woken = await asyncio.wait_for(waiting, 5)
        bodies = [e["body"] for e in woken["events"]]
        assert status == 200 and "Guten Tag, wie kann ich helfen?" in bodies
        cursor = woken["next"]

        # A cursor from the future finds nothing, and hides nothing after it.
        status, future = await poll(str(10**12))
        assert (status, future["events"]) == (200, [])
        await h.staff_says(case, ANNA, "Noch da?")
        status, later = await poll(cursor)
        assert [e["body"] for e in later["events"]] == ["Noch da?"]

        # A revoked token is refused at once, not trusted from the last check.
        await h.cases.tokens.revoke(case.case_id)
        status, refused = await poll(later["next"])
        assert status == 401 and refused["errcode"] == "BC_UNKNOWN_TOKEN", refused
