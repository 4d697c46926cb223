"""Federation with partner authorities, on this machine: three full stacks
(Synapse, bridge, clamd) with their own server names on loopback ports,
federating over TLS with self-signed certificates (not verified: tests only).
The town and the county name each other; a third server names the town, but
the town does not name it. The town's and the county's staff share a room;
the stranger can neither be invited nor join nor read, and check-config names
a partner that does not answer."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from playwright.async_api import Page, expect

from bridge.homeserver import load_secrets

from .a11y import assert_accessible
from .stack import REPO, Stack, free_port, make_stack, shared_rules
from .test_widget import browser, page, send, start_chat, stored  # noqa: F401

pytestmark = pytest.mark.e2e

TIMEOUT = aiohttp.ClientTimeout(total=30)


class FederatedStack(Stack):
    """A stack whose server name is ``127.0.0.1:<federation port>`` (the
    name says where its federation API is: no DNS, no well-known file)."""

    federation_port: int = 0

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.federation_port}"

    def mxid(self, local: str) -> str:
        return f"@{local}:{self.server_name}"


def federated(base: Path, port: int, partners: list[dict[str, Any]]) -> FederatedStack:
    stack = make_stack(
        base,
        edit_rules=shared_rules,
        homeserver={"server_name": f"127.0.0.1:{port}"},
        federation={
            "partners": partners,
            "port": port,
            "bind_address": "127.0.0.1",
            "verify_certificates": False,
            "allow_private_addresses": True,
        },
    )
    stack.__class__ = FederatedStack
    assert isinstance(stack, FederatedStack)
    stack.federation_port = port
    for name in ("departments.yaml", "buergerchat.yaml"):
        path = stack.config_dir / name
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace(":buergerchat.localhost", f":{stack.server_name}"),
            encoding="utf-8",
        )
    return stack


def partner(stack_port: int, pid: str, name: str) -> dict[str, Any]:
    return {
        "id": pid,
        "server_name": f"127.0.0.1:{stack_port}",
        "name": name,
        "departments": ["buergerbuero"],
    }


def one_at_a_time(data: dict[str, Any]) -> None:
    """The county's pension desk (Bernd, no fallback) takes one chat at a
    time: a second one waits in its line."""
    for department in data["departments"]:
        if department["id"] == "rente":
            department["max_cases_per_staff"] = 1


@pytest.fixture(scope="module")
async def three(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[FederatedStack, FederatedStack, FederatedStack]]:
    town_port, county_port, stranger_port = free_port(), free_port(), free_port()
    base = tmp_path_factory.mktemp("federation")
    county_for_town = partner(county_port, "landkreis", "Landratsamt")
    # Declared here, unknown there: the county refuses it.
    county_for_town["departments"] += ["gibtsnicht", "rente"]
    town = federated(base / "town", town_port, [county_for_town])
    county = federated(
        base / "county", county_port, [partner(town_port, "stadt", "Stadt")]
    )
    county.edit_config("departments.yaml", one_at_a_time)
    stranger = federated(
        base / "stranger", stranger_port, [partner(town_port, "stadt", "Stadt")]
    )
    stacks = (town, county, stranger)
    try:
        for stack in stacks:
            await asyncio.to_thread(stack.start)
        yield stacks
    finally:
        for stack in stacks:
            stack.stop()


class Staff:
    def __init__(self, stack: FederatedStack, token: str, mxid: str) -> None:
        self.stack, self.token, self.mxid = stack, token, mxid

    @classmethod
    async def login(cls, stack: FederatedStack, local: str) -> Staff:
        mxid = stack.mxid(local)
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": mxid},
            "password": stack.staff_password(mxid),
        }
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            async with s.post(
                f"{stack.homeserver_url}/_matrix/client/v3/login", json=body
            ) as r:
                data = await r.json()
                assert r.status == 200, data
        return cls(stack, data["access_token"], mxid)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            async with s.request(
                method,
                f"{self.stack.homeserver_url}/_matrix/client/v3{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as r:
                return r.status, await r.json(content_type=None)

    async def bodies(self, room_id: str) -> list[str]:
        status, data = await self.call(
            "GET", f"/rooms/{quote(room_id)}/messages?dir=b&limit=50"
        )
        assert status == 200, data
        return [
            e["content"]["body"]
            for e in data["chunk"]
            if e.get("type") == "m.room.message"
        ]


async def until(check: Any, within: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.5)


async def test_partners_share_a_room_and_a_stranger_is_refused(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    town, county, stranger = three
    anna = await Staff.login(town, "anna.schmidt")
    kreis = await Staff.login(county, "anna.schmidt")
    fremd = await Staff.login(stranger, "anna.schmidt")

    status, room = await anna.call(
        "POST", "/createRoom", {"preset": "private_chat", "invite": [kreis.mxid]}
    )
    assert status == 200, room
    room_id = room["room_id"]

    async def joined() -> bool:
        status, _ = await kreis.call(
            "POST", f"/join/{quote(room_id)}?server_name={quote(town.server_name)}"
        )
        return status == 200

    assert await until(joined)  # the invite came over federation, the join too
    status, _ = await kreis.call(
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/t1",
        {"msgtype": "m.text", "body": "Grüße vom Landratsamt"},
    )
    assert status == 200

    async def town_reads() -> bool:
        return "Grüße vom Landratsamt" in await anna.bodies(room_id)

    assert await until(town_reads)

    # The stranger names the town, the town does not name the stranger.
    status, data = await anna.call(
        "POST", f"/rooms/{quote(room_id)}/invite", {"user_id": fremd.mxid}
    )
    assert status == 403 and "Federation denied" in data["error"], data
    status, data = await fremd.call(
        "POST", f"/join/{quote(room_id)}?server_name={quote(town.server_name)}"
    )
    assert status in (403, 404), data
    status, data = await fremd.call(
        "GET", f"/rooms/{quote(room_id)}/messages?dir=b&limit=50"
    )
    assert status == 403, data


def check_config(stack: Stack) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "--config-dir",
            str(stack.config_dir),
            "--data-dir",
            str(stack.data_dir.parent / "check-data"),
            "check-config",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_check_config_finds_the_partner_and_names_one_that_is_down(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    town, _, _ = three
    out = await asyncio.to_thread(check_config, town)
    assert "not reachable" not in out, out  # the county answers over TLS

    def gone(data: dict[str, Any]) -> None:
        data["federation"]["partners"].append(
            partner(free_port(), "nachbar", "Nachbarstadt")
        )

    town.edit_config("buergerchat.yaml", gone)
    try:
        out = await asyncio.to_thread(check_config, town)
    finally:

        def back(data: dict[str, Any]) -> None:
            data["federation"]["partners"].pop()

        town.edit_config("buergerchat.yaml", back)
    assert "'nachbar' (Nachbarstadt" in out and "not reachable" in out, out
    rendered = yaml.safe_load(
        (town.data_dir / "synapse" / "homeserver.yaml").read_text(encoding="utf-8")
    )
    assert rendered["federation_domain_whitelist"] == [county_name(three)]


def county_name(three: tuple[FederatedStack, ...]) -> str:
    return three[1].server_name


# --- the hand-over ----------------------------------------------------------------


class Citizen:
    """The widget's calls: the town's citizen API."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.case: dict[str, Any] = {}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.case['token']}"} if self.case else {}
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            async with s.request(
                method,
                f"{self.stack.bridge_url}/api/v1{path}",
                json=body,
                headers=headers,
            ) as r:
                return r.status, await r.json(content_type=None)

    async def open(self, department: str = "buergerbuero") -> None:
        status, self.case = await self.call(
            "POST",
            "/cases",
            {"department": department, "consent": True, "name": "Erika Muster"},
        )
        assert status == 201, self.case

    async def write(self, body: str) -> None:
        status, data = await self.call(
            "POST",
            f"/cases/{self.case['case_id']}/messages",
            {"body": body, "client_id": body[:40]},
        )
        assert status in (201, 202), data

    async def events(self) -> list[dict[str, Any]]:
        status, data = await self.call(
            "GET", f"/cases/{self.case['case_id']}/events?after=0"
        )
        assert status == 200, data
        return list(data["events"])

    async def state(self) -> str:
        status, data = await self.call("GET", f"/cases/{self.case['case_id']}")
        assert status == 200, data
        return str(data["state"])

    async def answer(self, consent: Any, ask: int | None = None) -> tuple[int, Any]:
        body = {"consent": consent} | ({"ask": ask} if ask is not None else {})
        return await self.call("POST", f"/cases/{self.case['case_id']}/handover", body)

    async def attachment_from_staff(self) -> dict[str, Any]:
        async def delivered() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in await self.events()
                    if e["type"] == "attachment"
                    and e["sender"] == "staff"
                    and e.get("state") == "delivered"
                ),
                None,
            )

        return dict(await until(delivered, within=90))

    async def download(self, attachment_id: str) -> bytes:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            async with s.get(
                f"{self.stack.bridge_url}/api/v1/cases/{self.case['case_id']}"
                f"/attachments/{attachment_id}",
                headers={"Authorization": f"Bearer {self.case['token']}"},
            ) as r:
                assert r.status == 200, await r.text()
                return await r.read()

    async def saw(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            found = [e for e in await self.events() if e.get("kind") == kind]
            return found if len(found) >= count else None

        return list(await until(enough))


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


async def county_sends_file(
    staff: Staff, stack: Stack, room_id: str, name: str, data: bytes
) -> None:
    """Upload to the staff member's own homeserver, then post it in the room."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.post(
            f"{stack.homeserver_url}/_matrix/media/v3/upload?filename={name}",
            data=data,
            headers={
                "Authorization": f"Bearer {staff.token}",
                "Content-Type": "application/pdf",
            },
        ) as r:
            uploaded = await r.json()
            assert r.status == 200, uploaded
    status, sent = await staff.call(
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
        {
            "msgtype": "m.file",
            "body": name,
            "url": uploaded["content_uri"],
            "info": {"mimetype": "application/pdf", "size": len(data)},
        },
    )
    assert status == 200, sent


def count_rows(stack: Stack, table: str) -> int:
    with sqlite3.connect(stack.data_dir / "bridge.db") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def staff_says(staff: Staff, room_id: str, body: str) -> None:
    status, data = await staff.call(
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
        {"msgtype": "m.text", "body": body},
    )
    assert status == 200, data


async def case_room(staff: Staff, town: FederatedStack, case_id: str) -> str:
    """A town case's room, found by its alias and joined by ``staff``."""
    alias = quote(f"#bc_case_{case_id}:{town.server_name}")

    async def found() -> str | None:
        status, data = await staff.call("GET", f"/directory/room/{alias}")
        return str(data["room_id"]) if status == 200 else None

    room_id = str(await until(found))
    status, _ = await staff.call("POST", f"/join/{quote(room_id)}")
    assert status == 200
    return room_id


async def join_over(staff: Staff, room_id: str, town: FederatedStack) -> None:
    """A county staff member joins a town room over federation (once invited)."""

    async def joined() -> bool:
        status, _ = await staff.call(
            "POST", f"/join/{quote(room_id)}?server_name={quote(town.server_name)}"
        )
        return status == 200

    assert await until(joined)


async def test_a_case_goes_to_the_county_with_consent_and_the_citizen_stays(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    town, county, _ = three
    anna = await Staff.login(town, "anna.schmidt")
    kreis = await Staff.login(county, "anna.schmidt")
    citizen = Citizen(town)
    await citizen.open()
    await citizen.write("Ich möchte mein Auto ummelden.")
    room_id = await case_room(anna, town, citizen.case["case_id"])

    # Not a partner, not a department the partner takes: told, nothing asked.
    await staff_says(anna, room_id, "!transfer nirgendwo:kfz")
    await staff_says(anna, room_id, "!transfer landkreis:kfz")
    status, data = await citizen.answer(True)
    assert status == 409 and data["errcode"] == "BC_NO_HANDOVER", data

    # Asked, refused: the case stays with the town.
    await staff_says(anna, room_id, "!transfer landkreis:buergerbuero Kfz-Sache")
    ask = (await citizen.saw("handover_consent"))[0]
    assert "Landratsamt" in ask["body"] and "Chatverlauf" in ask["body"], ask
    status, data = await citizen.answer("ja")
    assert status == 400 and data["field"] == "consent", data
    status, data = await citizen.answer(False)
    assert (status, data["handover"]) == (200, "declined"), data
    await citizen.saw("handover_declined")
    assert await citizen.state() == "live"
    status, _ = await citizen.answer(True)
    assert status == 409  # nothing waits any more

    # Asked again, agreed: the county takes it into its own routing.
    await staff_says(anna, room_id, "!transfer landkreis:buergerbuero Kfz-Sache")
    asks = await citizen.saw("handover_consent", 2)
    status, data = await citizen.answer(True, ask=asks[0]["ask"])
    assert (status, data["errcode"]) == (409, "BC_NO_HANDOVER"), data  # old question
    status, data = await citizen.answer(True, ask=asks[1]["ask"])
    assert (status, data["handover"]) == (200, "agreed"), data
    handed = (await citizen.saw("handed_over"))[0]
    assert "Landratsamt" in handed["body"]
    assert await citizen.state() == "handed_over"

    await join_over(kreis, room_id, town)  # invited by the county's routing
    await staff_says(kreis, room_id, "Hier das Landratsamt, wir übernehmen.")

    async def answered() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in await citizen.events()
            if e.get("sender") == "staff" and "wir übernehmen" in e.get("body", "")
        ]
        return found or None

    reply = (await until(answered))[0]
    assert reply["sender_name"].endswith("(Landratsamt)"), reply
    joined = [
        e["body"] for e in await citizen.events() if e.get("kind") == "staff_joined"
    ]
    assert any(b.startswith("Anna Schmidt (Landratsamt) ist") for b in joined), joined

    # A file from the county's staff: scanned by the town, which receives it
    # (not by the county, which sends it), then the citizen downloads it intact.
    await county_sends_file(kreis, county, room_id, "Bescheid.pdf", PDF)
    attachment = await citizen.attachment_from_staff()
    assert await citizen.download(attachment["attachment_id"]) == PDF
    assert count_rows(county, "attachments") == 0

    # The citizen writes on in the same chat; the county reads it.
    await citizen.write("Danke, das ging schnell!")

    async def county_reads() -> bool:
        return "Danke, das ging schnell!" in await kreis.bodies(room_id)

    assert await until(county_reads)
    # The town's staff left the room.
    status, _ = await anna.call(
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/late",
        {"msgtype": "m.text", "body": "noch da?"},
    )
    assert status == 403

    status, taken = await kreis.call(
        "GET",
        f"/rooms/{quote(room_id)}/state/de.buergerchat.handover_answer/"
        f"{quote(county.server_name)}",
    )
    assert status == 200 and taken["accepted"] is True, taken

    # The county's bot may act in this room only: another case of the town
    # stays closed to it.
    other = Citizen(town)
    await other.open()
    other_alias = quote(f"#bc_case_{other.case['case_id']}:{town.server_name}")
    status, data = await anna.call("GET", f"/directory/room/{other_alias}")
    assert status == 200, data
    county_bot = f"@buergerchat:{county.server_name}"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
        async with s.post(
            f"{county.homeserver_url}/_matrix/client/v3/join/"
            f"{quote(data['room_id'])}?server_name={quote(town.server_name)}"
            f"&user_id={quote(county_bot)}",
            json={},
            headers={
                "Authorization": f"Bearer {load_secrets(county.data_dir)['as_token']}"
            },
        ) as r:
            assert r.status == 403, await r.text()

    # The county closes; the town closes too.
    await staff_says(kreis, room_id, "!close")
    closed = (await citizen.saw("closed"))[-1]
    assert "Landratsamt" in closed["body"], closed
    assert await citizen.state() == "closed"

    # Both sides archived their own record of it, and each verifies.
    for stack, reference in (
        (town, citizen.case["reference"]),
        (county, taken["reference"]),
    ):
        for _ in range(60):
            done = await asyncio.to_thread(verify, stack, reference)
            if done.returncode == 0:
                break
            await asyncio.sleep(2)
        assert "stimmt überein" in done.stdout, done.stdout + done.stderr

    # The county erases its case (its own retention, Art. 17): done, although
    # the citizen's ghost is the town's user (not erased from here).
    erased = await asyncio.to_thread(
        run_cli, county, "erase", taken["reference"], "--yes", "--wait", "120"
    )
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert "erased" in erased.stdout


def verify(stack: Stack, reference: str) -> subprocess.CompletedProcess[str]:
    return run_cli(stack, "verify-transcript", reference)


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={
            **os.environ,
            "BUERGERCHAT_CONFIG_DIR": str(stack.config_dir),
            "BUERGERCHAT_DATA_DIR": str(stack.data_dir),
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_in_the_widget_the_citizen_agrees_and_reads_the_county(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
    page: Page,  # noqa: F811 (fixture)
) -> None:
    """The same, as the citizen sees it in Chromium: the question with two
    buttons (accessible), "Einverstanden", then the county's answer with the
    county's name, in the same chat."""
    town, county, _ = three
    anna = await Staff.login(town, "anna.schmidt")
    kreis = await Staff.login(county, "anna.schmidt")
    await start_chat(page, town, "Max Beispiel")
    case = await stored(page, town)
    room_id = await case_room(anna, town, case["case_id"])
    await staff_says(anna, room_id, "!transfer landkreis:buergerbuero")
    group = page.get_by_role("group", name="Weitergabe an eine andere Behörde")
    await expect(group).to_be_visible(timeout=30_000)
    log = page.get_by_role("log")
    await expect(log).to_contain_text("an Landratsamt weitergeben")
    await assert_accessible(page, "handover question")
    await group.get_by_role("button", name="Einverstanden").click()
    await expect(group).to_be_hidden()
    await expect(log).to_contain_text(
        "wurde an Landratsamt weitergegeben", timeout=60_000
    )

    await join_over(kreis, room_id, town)
    await staff_says(kreis, room_id, "Guten Tag, hier ist das Landratsamt.")
    answer = log.locator(".msg.staff", has_text="hier ist das Landratsamt")
    await expect(answer).to_be_visible(timeout=30_000)
    await expect(answer).to_contain_text("(Landratsamt)")
    await send(page, "Vielen Dank!")

    async def county_reads() -> bool:
        return "Vielen Dank!" in await kreis.bodies(room_id)

    assert await until(county_reads)


async def test_no_way_around_the_citizens_consent(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    """A town staff member cannot hand a case over by hand: writing the
    hand-over into a room and inviting the county's bot themselves is ignored
    by the county; a county staff member invited straight into a live case
    room does not reach the citizen."""
    town, county, _ = three
    anna = await Staff.login(town, "anna.schmidt")
    kreis = await Staff.login(county, "anna.schmidt")
    county_bot = f"@buergerchat:{county.server_name}"

    status, room = await anna.call("POST", "/createRoom", {"preset": "private_chat"})
    assert status == 200, room
    forged = room["room_id"]
    status, data = await anna.call(
        "PUT",
        f"/rooms/{quote(forged)}/state/de.buergerchat.handover/"
        f"{quote(county.server_name)}",
        {"department": "buergerbuero", "citizen": anna.mxid, "reference": "X"},
    )
    assert status == 200, data
    status, data = await anna.call(
        "POST", f"/rooms/{quote(forged)}/invite", {"user_id": county_bot}
    )
    assert status == 200, data

    citizen = Citizen(town)
    await citizen.open()
    await citizen.write("Guten Tag")
    room_id = await case_room(anna, town, citizen.case["case_id"])
    status, data = await anna.call(
        "POST", f"/rooms/{quote(room_id)}/invite", {"user_id": kreis.mxid}
    )
    assert status == 200, data

    await join_over(kreis, room_id, town)
    await staff_says(kreis, room_id, "Ich bin vom Kreis, ungefragt.")
    await staff_says(anna, room_id, "Hier das Bürgerbüro.")

    async def town_answer_arrived() -> bool:
        return any(
            "Hier das Bürgerbüro" in e.get("body", "") for e in await citizen.events()
        )

    assert await until(town_answer_arrived)
    bodies = [e.get("body", "") for e in await citizen.events()]
    assert not any("ungefragt" in b for b in bodies), bodies
    assert await citizen.state() == "live"
    # The county's bot never followed the forged invite.
    status, members = await anna.call("GET", f"/rooms/{quote(forged)}/members")
    assert status == 200, members
    bot_state = [
        e["content"]["membership"]
        for e in members["chunk"]
        if e["state_key"] == county_bot
    ]
    assert bot_state == ["invite"], bot_state


async def test_the_county_refuses_what_it_does_not_have_and_the_case_stays(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    town, county, _ = three
    anna = await Staff.login(town, "anna.schmidt")
    citizen = Citizen(town)
    await citizen.open()
    room_id = await case_room(anna, town, citizen.case["case_id"])
    await staff_says(anna, room_id, "!transfer landkreis:gibtsnicht")
    await citizen.saw("handover_consent")
    status, data = await citizen.answer(True)
    assert status == 200, data
    refused = (await citizen.saw("handover_refused"))[0]
    assert "Landratsamt" in refused["body"], refused
    assert await citizen.state() == "live"

    async def staff_told() -> bool:
        return any("unbekannte Abteilung" in b for b in await anna.bodies(room_id))

    assert await until(staff_told)
    await staff_says(anna, room_id, "Dann helfen wir selbst.")

    async def citizen_reads() -> bool:
        return any(
            "helfen wir selbst" in e.get("body", "") for e in await citizen.events()
        )

    assert await until(citizen_reads)


async def test_with_read_only_the_towns_staff_read_on_and_cannot_write(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    """federation.after_handover: read_only (the town restarted with it)."""
    town, county, _ = three

    def read_only(data: dict[str, Any]) -> None:
        data["federation"]["after_handover"] = "read_only"

    town.edit_config("buergerchat.yaml", read_only)
    await asyncio.to_thread(town.stop)
    await asyncio.to_thread(town.start)
    anna = await Staff.login(town, "anna.schmidt")
    kreis = await Staff.login(county, "anna.schmidt")
    citizen = Citizen(town)
    await citizen.open()
    room_id = await case_room(anna, town, citizen.case["case_id"])
    await staff_says(anna, room_id, "!transfer landkreis:buergerbuero")
    await citizen.saw("handover_consent")
    status, data = await citizen.answer(True)
    assert status == 200, data
    await citizen.saw("handed_over")
    await join_over(kreis, room_id, town)
    await staff_says(kreis, room_id, "Der Kreis übernimmt.")

    async def anna_reads() -> bool:
        return "Der Kreis übernimmt." in await anna.bodies(room_id)

    assert await until(anna_reads)
    status, _ = await anna.call(
        "PUT",
        f"/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
        {"msgtype": "m.text", "body": "Ich mische mich ein."},
    )
    assert status == 403


async def test_a_busy_county_queues_the_case_and_the_citizen_sees_the_place(
    three: tuple[FederatedStack, FederatedStack, FederatedStack],
) -> None:
    """The county routes a hand-over by its own rules, its line included: the
    town's citizen reads their place in that line, then who took it."""
    town, county, _ = three
    anna = await Staff.login(town, "anna.schmidt")
    bernd = await Staff.login(county, "bernd.keller")
    local = Citizen(county)  # the county's own citizen: Bernd is busy
    await local.open("rente")
    local_room = await case_room(bernd, county, local.case["case_id"])
    citizen = Citizen(town)
    await citizen.open()
    await citizen.write("Frage zur Rente meiner Mutter.")
    room_id = await case_room(anna, town, citizen.case["case_id"])
    await staff_says(anna, room_id, "!transfer landkreis:rente Rentenfrage")
    await citizen.saw("handover_consent")
    status, data = await citizen.answer(True)
    assert status == 200, data
    await citizen.saw("handed_over")
    place = (await citizen.saw("queue"))[-1]
    assert place["position"] == 1 and "Position 1" in place["body"], place
    status, case = await citizen.call("GET", f"/cases/{citizen.case['case_id']}")
    assert (case["state"], case["queue"]["position"]) == ("handed_over", 1), case

    # Bernd finishes the county's own chat: the town's citizen is next.
    await staff_says(bernd, local_room, "!close")
    routed = (await citizen.saw("routed"))[-1]
    assert "Landratsamt" in routed["body"], routed
    status, case = await citizen.call("GET", f"/cases/{citizen.case['case_id']}")
    assert (case["state"], case["queue"]) == ("handed_over", None), case
    await join_over(bernd, room_id, town)
    await staff_says(bernd, room_id, "Hier die Rentenstelle des Kreises.")

    async def answered() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in await citizen.events()
            if "Rentenstelle" in e.get("body", "") and e.get("sender") == "staff"
        ]
        return found or None

    reply = (await until(answered))[0]
    assert reply["sender_name"] == "Bernd Keller (Landratsamt)", reply
    await staff_says(bernd, room_id, "!close")
    await citizen.saw("closed")
