"""The Synapse module (synapse/modules/buergerchat_scan.py) on the real stack: any
client's upload to Synapse's media repository is scanned by the same clamd, infected
files are refused at upload, clean ones stored byte for byte; the admin account and
the size limits the run command set up."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from nio import AsyncClient

from bots.scanner.clamd_runner import TESTFILES_DIR, eicar

from .stack import Stack
from .test_attachments import PDF, png

pytestmark = pytest.mark.e2e


async def upload_to_synapse(
    stack: Stack, token: str, data: bytes, name: str, mime: str
) -> tuple[int, dict[str, Any]]:
    """POST /_matrix/media/v3/upload as a plain Matrix client does."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.homeserver_url}/_matrix/media/v3/upload",
            params={"filename": name},
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": mime},
        ) as response:
            return response.status, await response.json()


async def download_from_synapse(
    stack: Stack, token: str, mxc: str
) -> tuple[int, bytes]:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{stack.homeserver_url}/_matrix/client/v1/media/download/"
            f"{server}/{media_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            return response.status, await response.read()


def media_files(stack: Stack) -> set[Path]:
    return {
        p
        for p in (stack.data_dir / "synapse" / "media_store").rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        ("hinweis.txt", eicar(), "text/plain"),
        ("clam.exe", (TESTFILES_DIR / "clam.exe").read_bytes(), "application/x-exe"),
    ],
    ids=["eicar", "clam.exe"],
)
async def test_infected_upload_refused_by_synapse(
    stack: Stack, anna: AsyncClient, name: str, data: bytes, mime: str
) -> None:
    """A staff client uploading EICAR or a clamav-testfiles sample straight to the
    media repository (no room at all) gets 403 M_FORBIDDEN naming the signature,
    and Synapse keeps no copy of it."""
    before = media_files(stack)
    status, body = await upload_to_synapse(stack, anna.access_token, data, name, mime)
    assert status == 403, body
    assert body["errcode"] == "M_FORBIDDEN"
    assert "Schadsoftware" in body["error"]
    assert body["de.buergerchat.signature"].startswith(("Buergerchat.", "Test."))
    assert media_files(stack) == before


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [("Foto.png", png(7, 5), "image/png"), ("Antrag.pdf", PDF, "application/pdf")],
    ids=["png", "pdf"],
)
async def test_clean_upload_accepted_by_synapse(
    stack: Stack, anna: AsyncClient, name: str, data: bytes, mime: str
) -> None:
    """A clean PNG or PDF uploaded directly is stored and downloads identically."""
    status, body = await upload_to_synapse(stack, anna.access_token, data, name, mime)
    assert status == 200, body
    status, downloaded = await download_from_synapse(
        stack, anna.access_token, body["content_uri"]
    )
    assert status == 200
    assert downloaded == data


def test_module_enabled_with_the_scanner_clamd(stack: Stack) -> None:
    """The rendered homeserver.yaml loads the module with the embedded clamd's
    socket and the same upload limit."""
    config = yaml.safe_load(
        (stack.data_dir / "synapse" / "homeserver.yaml").read_text(encoding="utf-8")
    )
    # staff into team rooms, erasure, then the scan
    teams, privacy, module = config["modules"]
    assert teams["module"] == "buergerchat_teams.BuergerchatTeams"
    assert privacy["module"] == "buergerchat_privacy.BuergerchatPrivacy"
    assert module["module"] == "buergerchat_scan.BuergerchatScan"
    assert module["config"]["clamd"] == f"unix:{stack.data_dir}/clamd/clamd.sock"
    assert module["config"]["max_upload_size"] == 20 << 20


def _clamd_setting(conf: str, key: str) -> int:
    match = re.search(rf"^{key} (\d+)$", conf, re.M)
    assert match, f"{key} missing in clamd.conf"
    return int(match[1])


async def test_upload_limits_are_consistent(stack: Stack, anna: AsyncClient) -> None:
    """Synapse's max_upload_size (as it reports it) ≤ clamd's StreamMaxLength ≤
    MaxFileSize, in the configs the run command wrote."""
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{stack.homeserver_url}/_matrix/client/v1/media/config",
            headers={"Authorization": f"Bearer {anna.access_token}"},
        ) as response:
            synapse_limit = (await response.json())["m.upload.size"]
    conf = (stack.data_dir / "clamd" / "clamd.conf").read_text(encoding="utf-8")
    stream = _clamd_setting(conf, "StreamMaxLength")
    file_size = _clamd_setting(conf, "MaxFileSize")
    assert synapse_limit == 20 << 20
    assert synapse_limit <= stream <= file_size
    assert "AlertExceedsMax yes" in conf


async def test_admin_account_created_once_and_kept_private(stack: Stack) -> None:
    """`buergerchat run` made a server admin for quarantines; its token sits in
    secrets.yaml, readable by the owner only."""
    path = stack.data_dir / "secrets.yaml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = yaml.safe_load(path.read_text(encoding="utf-8"))["synapse_admin_token"]
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(
            f"{stack.homeserver_url}/_matrix/client/v3/account/whoami", headers=headers
        ) as response:
            user_id = (await response.json())["user_id"]
        assert user_id == f"@buergerchat-admin:{stack.server_name}"
        async with session.get(
            f"{stack.homeserver_url}/_synapse/admin/v1/users/{user_id}/admin",
            headers=headers,
        ) as response:
            assert (await response.json())["admin"] is True
