"""Federation with partner authorities, on this machine: three full stacks
(Synapse, bridge, clamd) with their own server names on loopback ports,
federating over TLS with self-signed certificates (not verified: tests only).
The town and the county name each other; a third server names the town, but
the town does not name it. The town's and the county's staff share a room;
the stranger can neither be invited nor join nor read, and check-config names
a partner that does not answer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml

from .stack import REPO, Stack, free_port, make_stack, shared_rules

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


@pytest.fixture(scope="module")
async def three(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[FederatedStack, FederatedStack, FederatedStack]]:
    town_port, county_port, stranger_port = free_port(), free_port(), free_port()
    base = tmp_path_factory.mktemp("federation")
    town = federated(
        base / "town", town_port, [partner(county_port, "landkreis", "Landratsamt")]
    )
    county = federated(
        base / "county", county_port, [partner(town_port, "stadt", "Stadt")]
    )
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
