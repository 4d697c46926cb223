"""Quarantine of infected media: where the admin token comes from, and the admin
API calls against a local stand-in for Synapse (the real one: tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bridge.homeserver import save_secrets
from bridge.synapse_admin import (
    AdminTokenError,
    QuarantineFailed,
    SynapseAdmin,
    load_admin_token,
    split_mxc,
)


def test_mxc_split_into_server_and_media_id() -> None:
    assert split_mxc("mxc://stadt.example/AbC123") == ("stadt.example", "AbC123")


@pytest.mark.parametrize(
    "uri", ["https://x/y", "mxc://stadt.example", "mxc:///abc", "mxc://s/a/b"]
)
def test_not_an_mxc_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="not an mxc"):
        split_mxc(uri)


def test_embedded_token_read_from_secrets(tmp_path: Path) -> None:
    """Embedded Synapse: the token `buergerchat run` stored in secrets.yaml."""
    save_secrets(tmp_path, {"synapse_admin_token": "syt_abc"})
    token = load_admin_token(
        embedded=True, data_dir=tmp_path, config_dir=tmp_path, token_file=None
    )
    assert token == "syt_abc"


def test_embedded_without_stored_token_says_who_creates_it(tmp_path: Path) -> None:
    with pytest.raises(AdminTokenError, match="buergerchat run"):
        load_admin_token(
            embedded=True, data_dir=tmp_path, config_dir=tmp_path, token_file=None
        )


def test_external_homeserver_needs_a_token_file(tmp_path: Path) -> None:
    """Production without scanner.admin_token_file: the start is refused."""
    with pytest.raises(AdminTokenError, match="admin_token_file is required"):
        load_admin_token(
            embedded=False, data_dir=tmp_path, config_dir=tmp_path, token_file=None
        )


def test_token_file_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "admin_token").write_text("syt_file\n", encoding="utf-8")
    token = load_admin_token(
        embedded=False,
        data_dir=tmp_path / "data",
        config_dir=tmp_path,
        token_file="admin_token",
    )
    assert token == "syt_file"


@pytest.mark.parametrize("content", [None, "", "CHANGE_ME"])
def test_missing_or_placeholder_token_file_refused(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "admin_token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AdminTokenError, match="admin_token_file"):
        load_admin_token(
            embedded=False, data_dir=tmp_path, config_dir=tmp_path, token_file=str(path)
        )


class FakeSynapse:
    """Answers whoami, the is-admin query and quarantine like Synapse does."""

    def __init__(self) -> None:
        self.tokens = {"admin": ("@admin:s", True), "user": ("@user:s", False)}
        self.quarantined: list[str] = []
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/_matrix/client/v3/account/whoami", self.whoami),
                web.get("/_synapse/admin/v1/users/{user}/admin", self.is_admin),
                web.post(
                    "/_synapse/admin/v1/media/quarantine/{server}/{media}",
                    self.quarantine,
                ),
            ]
        )

    def _who(self, request: web.Request) -> tuple[str, bool] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.tokens.get(token)

    async def whoami(self, request: web.Request) -> web.Response:
        who = self._who(request)
        if who is None:
            return web.json_response({"errcode": "M_UNKNOWN_TOKEN"}, status=401)
        return web.json_response({"user_id": who[0]})

    async def is_admin(self, request: web.Request) -> web.Response:
        who = self._who(request)
        if who is None or not who[1]:
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        return web.json_response({"admin": True})

    async def quarantine(self, request: web.Request) -> web.Response:
        who = self._who(request)
        if who is None or not who[1]:
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        m = request.match_info
        self.quarantined.append(f"{m['server']}/{m['media']}")
        return web.json_response({})


@pytest.fixture
async def synapse() -> AsyncIterator[tuple[FakeSynapse, str]]:
    fake = FakeSynapse()
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_admin_token_checked_and_media_quarantined(
    synapse: tuple[FakeSynapse, str],
) -> None:
    fake, url = synapse
    admin = SynapseAdmin(url, "admin")
    assert await admin.check() == "@admin:s"
    await admin.quarantine("mxc://stadt.example/AbC")
    assert fake.quarantined == ["stadt.example/AbC"]


async def test_unknown_token_refused_at_check(synapse: tuple[FakeSynapse, str]) -> None:
    _, url = synapse
    with pytest.raises(AdminTokenError, match="401"):
        await SynapseAdmin(url, "nope").check()


async def test_token_of_a_normal_user_refused_at_check(
    synapse: tuple[FakeSynapse, str],
) -> None:
    _, url = synapse
    with pytest.raises(AdminTokenError, match="no server admin"):
        await SynapseAdmin(url, "user").check()


async def test_refused_quarantine_reported(synapse: tuple[FakeSynapse, str]) -> None:
    _, url = synapse
    with pytest.raises(QuarantineFailed, match="403"):
        await SynapseAdmin(url, "user").quarantine("mxc://s/m")


async def test_unreachable_synapse_reported(tmp_path: Path) -> None:
    admin = SynapseAdmin("http://127.0.0.1:9", "admin")
    with pytest.raises(QuarantineFailed, match="mxc://s/m"):
        await admin.quarantine("mxc://s/m")
