"""Quarantine of infected media through Synapse's admin API.

Redacting a staff member's infected file hides the event, but the file itself stays
in Synapse's media repository, downloadable by anyone who kept its ``mxc://`` URI.
Quarantine makes Synapse refuse every download of it (and of any later upload with
the same SHA-256). The appservice bot is no server admin, so this uses a dedicated
admin account: created by ``buergerchat run`` for the embedded Synapse (its token in
the data folder's secrets.yaml), or given by the operator as ``scanner.
admin_token_file`` for an external homeserver.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bridge.errors import BuergerchatError
from bridge.homeserver import ADMIN_TOKEN_KEY, read_secret

log = logging.getLogger("buergerchat.scanner")
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class AdminTokenError(BuergerchatError):
    """No usable Synapse admin token; the scanner refuses to start without one."""

    errcode = "BC_SCANNER_ADMIN_TOKEN"


class QuarantineFailed(BuergerchatError):
    errcode = "BC_QUARANTINE_FAILED"


def split_mxc(uri: str) -> tuple[str, str]:
    """``mxc://server/media_id`` → (server, media_id); ValueError otherwise."""
    rest = uri.removeprefix("mxc://")
    server, _, media_id = rest.partition("/")
    if not uri.startswith("mxc://") or not server or not media_id or "/" in media_id:
        raise ValueError(f"{uri!r} is not an mxc:// URI")
    return server, media_id


def load_admin_token(
    *, embedded: bool, data_dir: Path, config_dir: Path, token_file: str | None
) -> str:
    """The admin token: from ``scanner.admin_token_file`` if set, else (embedded
    Synapse) from secrets.yaml, where ``buergerchat run`` put it."""
    if token_file:
        path = Path(token_file)
        path = path if path.is_absolute() else config_dir / path
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise AdminTokenError(
                f"scanner.admin_token_file: cannot read {path} ({e.strerror}). "
                "Put a Synapse admin's access token into it."
            ) from None
        if not token or "CHANGE_ME" in token:
            raise AdminTokenError(
                f"scanner.admin_token_file: {path} holds no token yet. Put a "
                "Synapse admin's access token into it (one line)."
            )
        return token
    if not embedded:
        raise AdminTokenError(
            "scanner.admin_token_file is required when homeserver.embedded is false: "
            "the scanner quarantines infected staff uploads through Synapse's admin "
            "API. Create an admin account on the homeserver and put its access "
            "token into that file."
        )
    stored = read_secret(data_dir, ADMIN_TOKEN_KEY)
    if not stored:
        raise AdminTokenError(
            f"{data_dir / 'secrets.yaml'} has no {ADMIN_TOKEN_KEY}; `buergerchat "
            "run` creates it when it starts the embedded Synapse."
        )
    return stored


class SynapseAdmin:
    """The few admin API calls the scanner needs."""

    def __init__(self, homeserver_url: str, token: str) -> None:
        self.url = homeserver_url.rstrip("/")
        self.token = token
        self._headers = {"Authorization": f"Bearer {token}"}

    async def check(self) -> str:
        """The admin's user id; an AdminTokenError if the token is unknown or the
        account no server admin. Network trouble raises OSError/TimeoutError."""
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
            async with s.get(
                f"{self.url}/_matrix/client/v3/account/whoami", headers=self._headers
            ) as response:
                if response.status == 401:
                    raise AdminTokenError(
                        "Synapse does not know the scanner's admin token (401); "
                        "put a current access token into scanner.admin_token_file."
                    )
                response.raise_for_status()
                user_id = str((await response.json())["user_id"])
            async with s.get(
                f"{self.url}/_synapse/admin/v1/users/{quote(user_id)}/admin",
                headers=self._headers,
            ) as response:
                if response.status == 403:
                    raise AdminTokenError(
                        f"{user_id}, whose token the scanner has, is no server admin; "
                        "it cannot quarantine media. Use an admin's token."
                    )
                response.raise_for_status()
        return user_id

    async def quarantine(self, mxc: str) -> None:
        """Quarantine one file; QuarantineFailed says why it did not work."""
        server, media_id = split_mxc(mxc)
        endpoint = (
            f"{self.url}/_synapse/admin/v1/media/quarantine/"
            f"{quote(server, safe='')}/{quote(media_id, safe='')}"
        )
        try:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
                async with s.post(endpoint, headers=self._headers, json={}) as r:
                    if r.status != 200:
                        raise QuarantineFailed(
                            f"Synapse answered {r.status} to the quarantine of {mxc}: "
                            f"{(await r.text())[:200]}"
                        )
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise QuarantineFailed(f"quarantine of {mxc} failed: {e}") from e
        log.info("quarantined %s", mxc)
