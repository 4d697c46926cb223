"""Fault injection on the embedded default (SQLite): messages both ways in several
cases while the stack is stopped and started, the bridge is killed, Synapse is
killed, both are killed, clamd is killed during uploads and the SMTP server is
down during offline messages. Then everything is counted in Synapse, in the
citizens' events and at the SMTP server: lost 0, twice 0, out of order 0."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.e2e.samples import png
from tests.e2e.stack import Stack, make_stack, shared_rules
from tests.e2e.test_offline import Smtp, smtp, smtp_mail  # noqa: F401 (fixture)

from .traffic import (
    ANNA,
    Traffic,
    clamd_pid,
    kill,
    kill_bridge,
    kill_round,
    kill_synapse,
    restart_stack,
    totals,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: Smtp,  # noqa: F811
) -> Iterator[Stack]:
    """The product mailing through ``smtp`` (retries after a second), with Anna
    as admin so she reads the admin room."""

    def rules(data: dict[str, Any]) -> None:
        shared_rules(data)
        data["routing"]["admins"] = [ANNA]

    s = make_stack(tmp_path_factory.mktemp("faults"), rules, mail=smtp_mail(smtp))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def assert_nothing_lost_or_twice(traffic: Traffic, tallies: Any) -> None:
    counts = totals(tallies)
    detail = {
        ref: {d: (t.lost[:5], t.twice[:5], t.out_of_order) for d, t in c.items()}
        for ref, c in tallies.items()
    }
    for direction, c in counts.items():
        assert c["sent"] > 0, (direction, counts)
        assert (c["lost"], c["twice"], c["out_of_order"]) == (0, 0, 0), (
            direction,
            counts,
            detail,
        )


async def test_messages_survive_restarts_and_kills(stack: Stack) -> None:
    """Citizens and staff write in three cases while the stack is stopped and
    started, the bridge is killed (-9), Synapse alone is killed (-9; the bridge
    starts it again) and both are killed at once: every message arrives once, in
    order, both ways."""
    traffic = Traffic(stack)
    await traffic.login_staff()
    await traffic.open_cases(3)

    async def faults() -> None:
        await kill_round(stack, clean_restart=True, pause=2)

    await traffic.run(faults, per_case=400, staff=1200, pause=0.03)
    tallies = await traffic.settle(within=180)
    assert_nothing_lost_or_twice(traffic, tallies)
    counts = totals(tallies)
    # The faults really happened in the middle of the traffic.
    assert traffic.citizen_retries > 0
    assert counts["citizen_to_staff"]["sent"] >= 60, counts
    assert counts["staff_to_citizen"]["sent"] >= 60, counts
    print("fault suite:", json.dumps(counts))


async def test_synapse_is_restarted_healthz_tells_and_admins_hear_of_a_crash_loop(
    stack: Stack,
) -> None:
    """A killed Synapse is started again (logged with the reason); while it is
    down /healthz answers 503 naming the homeserver; three crashes in a row put
    an alert into the admin room."""
    traffic = Traffic(stack)
    await traffic.login_staff()
    admin_room = await join_admin_room(stack, traffic)
    saw_down = asyncio.create_task(poll_health_for(stack, "homeserver"))
    for _ in range(3):
        await kill_synapse(stack)
        await wait_until(lambda: "Synapse restarted" in stack.log(), 60, "restart")
    assert await asyncio.wait_for(saw_down, 60)
    assert "Synapse died (killed by SIGKILL); restarting it" in stack.log()
    await wait_healthy(stack)
    texts = await notices(stack, traffic, admin_room, "hintereinander ausgefallen")
    assert len(texts) == 1 and "Synapse" in texts[0], texts


async def test_uploads_survive_killed_clamd(stack: Stack) -> None:
    """Files uploaded while clamd is killed again and again are held, scanned
    once clamd is back (the bridge restarts it) and reach the room once each;
    /healthz names clamd while it is down."""
    traffic = Traffic(stack)
    await traffic.login_staff()
    await traffic.open_cases(1)
    case = traffic.cases[0]
    accepted: list[str] = []
    saw_down = asyncio.create_task(poll_health_for(stack, "clamd"))

    async def upload(n: int) -> None:
        form = aiohttp.FormData()
        form.add_field("client_id", f"up-{n}")
        form.add_field(
            "file",
            png(width=3 + n, height=2),
            filename=f"foto-{n}.png",
            content_type="image/png",
        )
        async with aiohttp.ClientSession() as s:
            async with s.post(
                f"{stack.bridge_url}/api/v1/cases/{case.case_id}/attachments",
                data=form,
                headers={"Authorization": f"Bearer {case.token}"},
            ) as r:
                body = await r.json()
                assert r.status in (201, 202), body
                accepted.append(body["attachment_id"])

    for round_ in range(3):
        kill(clamd_pid(stack))
        await asyncio.gather(*(upload(round_ * 10 + i) for i in range(5)))
        await wait_until(lambda: clamd_pid(stack) is not None, 30, "clamd back")
        await asyncio.sleep(1)
    assert await asyncio.wait_for(saw_down, 30)
    assert "clamd died" in stack.log()

    async def delivered() -> Counter[str]:
        history = await traffic.room_history(case)
        return Counter(
            e["content"].get("de.buergerchat.attachment_id")
            for e in history
            if e.get("type") == "m.room.message"
            and e["content"].get("msgtype") == "m.image"
        )

    for _ in range(120):
        seen = await delivered()
        if all(seen[a] >= 1 for a in accepted):
            break
        await asyncio.sleep(1)
    seen = await delivered()
    assert len(accepted) == 15
    assert {a: seen[a] for a in accepted} == dict.fromkeys(accepted, 1)


async def test_offline_mails_survive_smtp_outage_and_bridge_kill(
    stack: Stack,
    smtp: Smtp,  # noqa: F811
) -> None:
    """Offline messages left while the SMTP server is down, with the bridge killed
    in between, reach the server once each when it is back: two mails per
    message (department and confirmation), no more."""
    smtp.stop()
    references = []
    async with aiohttp.ClientSession() as s:
        for n in range(6):
            async with s.post(
                f"{stack.bridge_url}/api/v1/offline-messages",
                json={
                    "client_id": str(uuid.uuid4()),
                    "department": "buergerbuero",
                    "description": f"Offline {n}",
                    "name": "Eva Muster",
                    "email": f"eva{n}@example.org",
                    "consent": True,
                },
            ) as r:
                body = await r.json()
                assert r.status == 201, body
                references.append(body["reference"])
            if n == 2:
                kill_bridge(stack)
                await restart_stack(stack)
    await asyncio.sleep(2)
    smtp.start()

    def mails_of(reference: str) -> list[str]:
        return [
            str(m.message["Message-ID"])
            for m in smtp.received
            if reference in str(m.message["Subject"])
            or reference in m.message.get_body().get_content()
        ]

    async def complete() -> bool:
        return all(len(set(mails_of(r))) >= 2 for r in references)

    for _ in range(120):
        if await complete():
            break
        await asyncio.sleep(1)
    await asyncio.sleep(3)  # anything sent twice would have arrived by now
    for reference in references:
        ids = mails_of(reference)
        assert len(ids) == 2 and len(set(ids)) == 2, (reference, ids)


async def test_the_data_folder_is_private(stack: Stack) -> None:
    """After all of the above (databases, media, held files, mails, logs): the
    data folder and everything in it is for the owner only."""
    assert stat.S_IMODE(stack.data_dir.stat().st_mode) == 0o700
    loose = []
    for path in [stack.data_dir, *stack.data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_IMODE(mode) & 0o077:
            loose.append((str(path.relative_to(stack.data_dir)), oct(mode)))
    assert not loose, loose
    assert (stack.data_dir / "synapse" / "homeserver.db").exists()
    assert (stack.data_dir / "bridge.db").exists()


# --- helpers ---------------------------------------------------------------------


async def poll_health_for(stack: Stack, part: str, within: float = 90) -> bool:
    """True once /healthz answered 503 with ``part`` down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=8)) as s:
        while loop.time() < deadline:
            try:
                async with s.get(f"{stack.bridge_url}/healthz") as r:
                    body = await r.json()
                    if r.status == 503 and body[part]["ok"] is False:
                        return True
            except (aiohttp.ClientError, TimeoutError, KeyError):
                pass
            await asyncio.sleep(0.1)
    return False


async def wait_healthy(stack: Stack, within: float = 60) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(int(within * 5)):
            async with s.get(f"{stack.bridge_url}/healthz") as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("/healthz did not recover")


async def join_admin_room(stack: Stack, traffic: Traffic) -> str:
    alias = quote(f"#buergerchat-admin:{stack.server_name}")
    async with aiohttp.ClientSession() as s:
        status, data = await traffic._staff(s, "GET", f"/directory/room/{alias}")
        assert status == 200, data
        room_id = str(data["room_id"])
        status, data = await traffic._staff(s, "POST", f"/join/{quote(room_id)}", {})
        assert status == 200, data
    return room_id


async def notices(
    stack: Stack, traffic: Traffic, room_id: str, needle: str, within: float = 60
) -> list[str]:
    """Bodies of the bot's notices in ``room_id`` containing ``needle``, once at
    least one is there (and a moment more for a second one to show)."""
    from .traffic import Case

    room = Case("", "", "", room_id)
    for _ in range(int(within)):
        history = await traffic.room_history(room)
        found = [
            e["content"]["body"]
            for e in history
            if needle in str((e.get("content") or {}).get("body"))
        ]
        if found:
            await asyncio.sleep(3)
            history = await traffic.room_history(room)
            return [
                e["content"]["body"]
                for e in history
                if needle in str((e.get("content") or {}).get("body"))
            ]
        await asyncio.sleep(1)
    return []
