"""Staff are not flooded: a burst of chats from one address is one team notice;
an admin's !block stops the address (403 BC_BLOCKED) until it runs out or
!unblock lifts it. In one process (tests/harness.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import harness

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"
CHAT = {"department": "bauen", "consent": True, "name": "Eva"}


def _team_notices(h: Any, alias: str) -> list[str]:
    room = h.hs.room_of_alias(alias)
    return [c["body"] for c in h.hs.messages(room.room_id)]


async def test_a_burst_from_one_address_is_one_team_notice(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        cases = []
        for n in range(5):
            case, _ = await h.open_case("standesamt", client_key="k-same")
            await h.cases.post_citizen_message(case, f"m{n}", f"Hallo {n}")
            cases.append(case)
        other, _ = await h.open_case("bauen", client_key="k-other")
        await h.cases.post_citizen_message(other, "o", "Guten Tag")
        notices = _team_notices(h, "team-standesamt")
        single = [n for n in notices if "Hallo" in n]
        assert [cases[0].reference in single[0], cases[1].reference in single[1]] == [
            True,
            True,
        ]
        assert len(single) == 2
        (burst,) = [n for n in notices if n.startswith("Viele Chats")]
        assert all(c.reference in burst for c in cases[:3])
        assert cases[3].reference not in burst and "!block" in burst
        # Another address is announced as usual.
        assert any(other.reference in n for n in _team_notices(h, "team-bauen"))


async def test_an_admin_blocks_an_address_until_unblocked(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        h.config.routing = _with_admins(h.config.routing, (BERND,))
        response = await client.post("/api/v1/cases", json=CHAT)
        assert response.status == 201
        case = await h.store.get_case((await response.json())["case_id"])
        assert case is not None and case.client_key
        await h.staff_joins(case, BERND)
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "!block Spam")
        assert (await h.store.get_case(case.case_id)).closed_at is None  # type: ignore[union-attr]
        await h.staff_says(case, BERND, "!block Werbung in Serie")
        closed = await h.store.get_case(case.case_id)
        assert closed is not None and closed.state == "closed"
        replies = [c["body"] for c in h.hs.messages(case.room_id or closed.room_id)]  # type: ignore[arg-type]
        assert any("nur die Admins" in r for r in replies)
        assert any("gesperrt" in r and "Werbung in Serie" in r for r in replies)
        refused = await client.post("/api/v1/cases", json=CHAT)
        assert refused.status == 403
        body = await refused.json()
        assert body["errcode"] == "BC_BLOCKED" and body["until"]
        offline = await client.post(
            "/api/v1/offline-messages",
            json={
                "client_id": "x1",
                "department": "bauen",
                "description": "Hallo",
                "name": "Eva",
                "email": "eva@example.org",
                "consent": True,
            },
        )
        assert offline.status == 403
        await h.staff_says(closed, BERND, "!unblock")
        again = await client.post("/api/v1/cases", json=CHAT)
        assert again.status == 201


async def test_a_block_runs_out(tmp_path: Path) -> None:
    async with harness(tmp_path) as h, h.api() as client:
        response = await client.post("/api/v1/cases", json=CHAT)
        case = await h.store.get_case((await response.json())["case_id"])
        assert case is not None
        await h.staff_joins(case, BERND)
        await h.staff_says(case, BERND, "!block")  # no admins: staff may
        assert (await client.post("/api/v1/cases", json=CHAT)).status == 403
        h.clock.advance(hours=h.config.limits.block_hours, seconds=1)
        assert (await client.post("/api/v1/cases", json=CHAT)).status == 201


def _with_admins(rules: Any, admins: tuple[str, ...]) -> Any:
    from dataclasses import replace

    return replace(rules, admins=admins)
