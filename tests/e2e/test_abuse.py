"""Abuse limits against the real product (real Synapse, clamd, the job queue)
with the shipped defaults: one address cannot flood chats, messages, polls,
offline messages, files or someone's mailbox; what is refused is refused whole
(429 with Retry-After, nothing stored), and sent again later it all arrives,
each once. The requests come through 127.0.0.1, configured as the trusted
proxy, so X-Forwarded-For stands for the citizens' addresses."""

from __future__ import annotations

import asyncio
import base64
import json as json_module
import sqlite3
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import aiohttp
import altcha
import pytest

from .conftest import ANNA, staff_client
from .samples import png
from .stack import Stack, make_stack
from .test_live_chat import join_case_room, wait_for_event
from .test_routing import say
from .test_video import bot_notice

pytestmark = pytest.mark.e2e

PROXY = {"trusted_proxies": ["127.0.0.1", "::1"]}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The product with its default limits behind a trusted proxy."""
    s = make_stack(tmp_path_factory.mktemp("guarded"), limits=PROXY)
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def call(
    stack: Stack,
    method: str,
    path: str,
    *,
    address: str,
    token: str | None = None,
    json: Any = None,
    data: Any = None,
    proof: str | None = None,
    solve: bool = True,
) -> tuple[int, Any, Any]:
    """One request from ``address``; a proof of work asked for is solved and the
    request sent again, as the widget does (unless ``solve`` is False)."""
    headers = {"X-Forwarded-For": address}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if proof:
        headers["X-Buergerchat-Proof"] = proof
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, stack.bridge_url + path, json=json, data=data, headers=headers
        ) as response:
            answer = response.status, await response.json(), response.headers
    status, body, _ = answer
    if status == 428 and solve and proof is None:
        return await call(
            stack,
            method,
            path,
            address=address,
            token=token,
            json=json,
            data=data,
            proof=solved(body["challenge"]),
        )
    return answer


def solved(challenge: dict[str, Any]) -> str:
    """What the widget sends back: the challenge with its solution, base64."""
    found = altcha.solve_challenge(
        altcha.Challenge.from_dict(challenge), altcha.derive_key_sha
    )
    assert found is not None
    payload = {"challenge": challenge, "solution": found.to_dict()}
    return base64.b64encode(json_module.dumps(payload).encode()).decode()


async def new_chat(stack: Stack, address: str) -> tuple[int, Any, Any]:
    return await call(
        stack,
        "POST",
        "/api/v1/cases",
        address=address,
        json={"department": "buergerbuero", "consent": True, "name": "Eva"},
    )


def count(stack: Stack, sql: str, *args: Any) -> int:
    with sqlite3.connect(stack.data_dir / "bridge.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


def assert_limited(status: int, body: Any, headers: Any, limit: str) -> int:
    assert status == 429, body
    assert body["errcode"] == "BC_RATE_LIMITED" and body["limit"] == limit
    wait = int(headers["Retry-After"])
    assert wait == body["retry_after_seconds"] and 1 <= wait <= 3600
    assert "Sekunden" in body["error"] and "seconds" in body["error"]
    return wait


async def test_one_address_opens_three_chats_a_minute(guarded: Stack) -> None:
    """The fourth chat in a minute from one address is refused and creates
    nothing (no case, no room, no team notice); another address is served."""
    before = count(guarded, "SELECT count(*) FROM cases")
    for _ in range(3):
        status, body, _ = await new_chat(guarded, "198.51.100.10")
        assert status == 201, body
    status, body, headers = await new_chat(guarded, "198.51.100.10")
    assert_limited(status, body, headers, "chats_per_address")
    status, body, _ = await new_chat(guarded, "198.51.100.11")
    assert status == 201, body
    assert count(guarded, "SELECT count(*) FROM cases") == before + 4


async def test_a_message_flood_is_cut_and_nothing_is_lost(guarded: Stack) -> None:
    """30 messages at once into one case: 20 are taken, 10 refused whole. Sent
    again after Retry-After (as the widget does), all 30 are in the timeline,
    each once, in the order of their second sending."""
    status, case, _ = await new_chat(guarded, "198.51.100.20")
    assert status == 201, case
    path = f"/api/v1/cases/{case['case_id']}/messages"

    async def send(n: int) -> tuple[int, Any, Any]:
        return await call(
            guarded,
            "POST",
            path,
            address="198.51.100.20",
            token=case["token"],
            json={"body": f"Nachricht {n}", "client_id": f"m{n}"},
        )

    answers = await asyncio.gather(*(send(n) for n in range(30)))
    taken = [n for n, (status, _, _) in enumerate(answers) if status in (201, 202)]
    refused = [n for n, (status, _, _) in enumerate(answers) if status == 429]
    assert len(taken) == 20 and len(refused) == 10
    waits = [assert_limited(*answers[n], "messages_per_case") for n in refused]
    await asyncio.sleep(max(waits) + 1)
    for n in refused:
        status, body, _ = await send(n)
        assert status in (201, 202), body
    bodies = await citizen_messages(guarded, case)
    assert sorted(bodies) == sorted(f"Nachricht {n}" for n in range(30))


async def test_staff_block_an_address_and_lift_it(guarded: Stack) -> None:
    """!block in a case room (no admins named: any staff) ends that chat and
    refuses new chats from its address with 403 BC_BLOCKED, others not;
    !unblock lets the address in again."""
    status, case, _ = await new_chat(guarded, "198.51.100.70")
    assert status == 201, case
    anna = await staff_client(guarded, ANNA)
    try:
        room_id = await join_case_room(anna, case["reference"])
        await say(anna, room_id, "!block Beleidigungen")
        await wait_for_event(guarded, case, lambda e: e.get("kind") == "closed")
        notice = await bot_notice(anna, room_id, "gesperrt")
        assert "Beleidigungen" in notice
        status, body, _ = await new_chat(guarded, "198.51.100.70")
        assert (status, body["errcode"]) == (403, "BC_BLOCKED"), body
        status, body, _ = await new_chat(guarded, "198.51.100.71")
        assert status == 201, body
        await say(anna, room_id, "!unblock")
        await bot_notice(anna, room_id, "Sperre aufgehoben")
        status, body, _ = await new_chat(guarded, "198.51.100.70")
        assert status == 201, body
    finally:
        await anna.close()


async def citizen_messages(stack: Stack, case: dict[str, Any]) -> list[str]:
    status, body, _ = await call(
        stack,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after=0",
        address="198.51.100.99",
        token=case["token"],
    )
    assert status == 200, body
    return [
        e["body"]
        for e in body["events"]
        if e["type"] == "message" and e["sender"] == "citizen"
    ]


async def test_long_polls_are_capped_per_token(guarded: Stack) -> None:
    """Three polls of one token are held; a fourth is refused at once; when one
    ends, the token may poll again."""
    status, case, _ = await new_chat(guarded, "198.51.100.30")
    assert status == 201, case
    path = f"/api/v1/cases/{case['case_id']}/events?after=999999&timeout=8"

    async def poll() -> tuple[int, Any, Any]:
        return await call(
            guarded, "GET", path, address="198.51.100.30", token=case["token"]
        )

    held = [asyncio.create_task(poll()) for _ in range(3)]
    await asyncio.sleep(1.5)
    assert not any(task.done() for task in held)
    status, body, headers = await poll()
    assert_limited(status, body, headers, "polls_per_token")
    assert [status for status, _, _ in await asyncio.gather(*held)] == [200] * 3
    status, body, _ = await call(
        guarded,
        "GET",
        f"/api/v1/cases/{case['case_id']}/events?after=0",
        address="198.51.100.30",
        token=case["token"],
    )
    assert status == 200, body


async def leave_message(stack: Stack, address: str, email: str) -> tuple[int, Any, Any]:
    return await call(
        stack,
        "POST",
        "/api/v1/offline-messages",
        address=address,
        json=offline_form(email),
    )


def offline_form(email: str) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "topic": "personalausweis",
        "description": "Bitte rufen Sie mich an. Kaufen Sie billige Uhren!",
        "name": "Eva <b>Muster</b> http://spam.example",
        "email": email,
        "consent": True,
        "language": "de",
    }


async def test_offline_messages_and_confirmations_are_capped(guarded: Stack) -> None:
    """One address leaves three messages a minute; a fourth is refused and
    stores nothing. Four messages naming one victim's address (from four
    addresses) reach the department four times, but the victim gets three
    confirmations at most, and none carries what the sender typed."""
    victim = f"victim-{uuid.uuid4().hex[:6]}@example.org"
    before = count(guarded, "SELECT count(*) FROM offline_messages")
    for _ in range(3):
        status, body, _ = await leave_message(
            guarded, "198.51.100.40", f"eva-{uuid.uuid4().hex[:6]}@example.org"
        )
        assert status == 201, body
    status, body, headers = await leave_message(
        guarded, "198.51.100.40", "eva@example.org"
    )
    assert_limited(status, body, headers, "offline_per_address")
    assert count(guarded, "SELECT count(*) FROM offline_messages") == before + 3

    for n in range(4):
        status, body, _ = await leave_message(guarded, f"198.51.100.{50 + n}", victim)
        assert status == 201, body
    to_victim = await mails_to(guarded, victim, at_least=3)
    assert len(to_victim) == 3
    for mail in to_victim:
        text = mail.as_string()
        for typed in ("Muster", "spam.example", "Uhren", "<b>"):
            assert typed not in text, typed


async def mails_to(stack: Stack, address: str, at_least: int) -> list[Any]:
    """Mails the maildir backend wrote for ``address`` (waits for ``at_least``,
    then a little longer for any that should not come)."""
    folder = stack.data_dir / "mail"
    found: list[Any] = []
    for _ in range(100):
        found = []
        for path in folder.rglob("*"):
            if path.is_file():
                mail = message_from_bytes(path.read_bytes())
                if address in str(mail.get("To", "")):
                    found.append(mail)
        if len(found) >= at_least:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    return [
        message_from_bytes(p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file() and address in str(message_from_bytes(p.read_bytes())["To"])
    ]


async def test_uploads_are_capped_per_case(guarded: Stack) -> None:
    """Ten files in ten minutes per case; the eleventh is refused before its
    body is read, and no attachment row is written for it."""
    status, case, _ = await new_chat(guarded, "198.51.100.60")
    assert status == 201, case

    async def upload(n: int) -> tuple[int, Any, Any]:
        form = aiohttp.FormData()
        form.add_field("file", png(3, 2), filename=f"foto{n}.png")
        form.add_field("client_id", f"f{n}")
        return await call(
            guarded,
            "POST",
            f"/api/v1/cases/{case['case_id']}/attachments",
            address="198.51.100.60",
            token=case["token"],
            data=form,
        )

    for n in range(10):
        status, body, _ = await upload(n)
        assert status in (201, 202), body
    status, body, headers = await upload(10)
    assert_limited(status, body, headers, "uploads_per_case")
    rows = count(
        guarded, "SELECT count(*) FROM attachments WHERE case_id = ?", case["case_id"]
    )
    assert rows == 10


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A service-wide limit small enough to reach in a test."""
    s = make_stack(
        tmp_path_factory.mktemp("crowded"),
        limits={**PROXY, "chats_total": "4/minute", "offline_total": "2/minute"},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_the_whole_service_has_a_ceiling(crowded: Stack) -> None:
    """Many addresses together: past the service-wide rate every address waits."""
    for n in range(4):
        status, body, _ = await new_chat(crowded, f"203.0.113.{n}")
        assert status == 201, body
    status, body, headers = await new_chat(crowded, "203.0.113.200")
    assert_limited(status, body, headers, "chats_total")
    for n in range(2):
        status, body, _ = await leave_message(
            crowded, f"203.0.113.{10 + n}", f"e{n}@example.org"
        )
        assert status == 201, body
    status, body, headers = await leave_message(
        crowded, "203.0.113.201", "e9@example.org"
    )
    assert_limited(status, body, headers, "offline_total")


async def test_a_proof_of_work_is_asked_under_load_and_counts_once(
    guarded: Stack,
) -> None:
    """Two chats from an address need nothing; beyond that the bridge asks for a
    proof of work (428 with an ALTCHA challenge). Solved, the chat is opened; a
    wrong, replayed or other-purpose solution is asked again."""
    address = "198.51.100.80"
    for _ in range(2):
        status, body, _ = await new_chat_plain(guarded, address)
        assert status == 201, body
    status, asked, _ = await new_chat_plain(guarded, address)
    assert status == 428 and asked["errcode"] == "BC_PROOF_REQUIRED", asked
    challenge = asked["challenge"]
    assert challenge["parameters"]["data"] == {"purpose": "chat"}
    proof = solved(challenge)
    status, body, _ = await new_chat_plain(guarded, address, proof=proof)
    assert status == 201, body
    status, body, _ = await new_chat_plain(guarded, "198.51.100.81", proof=proof)
    assert status == 428, body  # a proof counts once
    fresh = (await new_chat_plain(guarded, address))[1]
    wrong = json_module.loads(base64.b64decode(solved(fresh["challenge"])))
    wrong["solution"]["counter"] += 1
    tampered = base64.b64encode(json_module.dumps(wrong).encode()).decode()
    status, body, _ = await new_chat_plain(guarded, address, proof=tampered)
    assert status == 428, body
    offline = await call(
        guarded,
        "POST",
        "/api/v1/offline-messages",
        address=address,
        json=offline_form("eva@example.org"),
        proof=solved((await new_chat_plain(guarded, address))[1]["challenge"]),
        solve=False,
    )
    assert offline[0] == 428, offline[1]  # a chat's proof is no offline proof


async def new_chat_plain(
    stack: Stack, address: str, proof: str | None = None
) -> tuple[int, Any, Any]:
    return await call(
        stack,
        "POST",
        "/api/v1/cases",
        address=address,
        json={"department": "buergerbuero", "consent": True, "name": "Eva"},
        proof=proof,
        solve=False,
    )


async def test_one_address_sends_twenty_files_in_ten_minutes(guarded: Stack) -> None:
    """Across its cases one address sends 20 files in ten minutes; the 21st is
    refused (uploads_per_address), whichever case it is for."""
    address = "198.51.100.90"
    cases = []
    for n in range(3):
        status, case, _ = await new_chat(guarded, f"198.51.100.{91 + n}")
        assert status == 201, case
        cases.append(case)

    async def upload(case: Any, n: int) -> tuple[int, Any, Any]:
        form = aiohttp.FormData()
        form.add_field("file", png(2, 2), filename=f"bild{n}.png")
        form.add_field("client_id", f"a{n}")
        return await call(
            guarded,
            "POST",
            f"/api/v1/cases/{case['case_id']}/attachments",
            address=address,
            token=case["token"],
            data=form,
        )

    for n in range(20):
        status, body, _ = await upload(cases[n // 10], n)
        assert status in (201, 202), body
    status, body, headers = await upload(cases[2], 20)
    assert_limited(status, body, headers, "uploads_per_address")


async def test_one_address_holds_sixty_polls(guarded: Stack) -> None:
    """Sixty long-polls from one address (three per token) are held; the 61st
    is refused at once (polls_per_address)."""
    cases = []
    for n in range(21):
        status, case, _ = await new_chat(guarded, f"203.0.113.{100 + n}")
        assert status == 201, case
        cases.append(case)

    async def poll(case: Any) -> tuple[int, Any, Any]:
        return await call(
            guarded,
            "GET",
            f"/api/v1/cases/{case['case_id']}/events?after=999999&timeout=10",
            address="198.51.100.95",
            token=case["token"],
        )

    held = [asyncio.create_task(poll(cases[n // 3])) for n in range(60)]
    await asyncio.sleep(3)
    assert not any(task.done() for task in held)
    status, body, headers = await poll(cases[20])
    assert_limited(status, body, headers, "polls_per_address")
    assert {s for s, _, _ in await asyncio.gather(*held)} == {200}


async def test_personal_links_cannot_be_guessed_fast(guarded: Stack) -> None:
    """Ten personal links a minute from one address are tried (and refused as
    unknown); the eleventh try is not even looked at (resumes_per_address)."""
    status, case, _ = await new_chat(guarded, "198.51.100.97")
    assert status == 201, case
    path = f"/api/v1/cases/{case['case_id']}/resume"
    for n in range(10):
        status, body, _ = await call(
            guarded, "POST", path, address="198.51.100.98", token=f"guess{n}"
        )
        assert status == 401, body
    status, body, headers = await call(
        guarded, "POST", path, address="198.51.100.98", token="guess10"
    )
    assert_limited(status, body, headers, "resumes_per_address")
