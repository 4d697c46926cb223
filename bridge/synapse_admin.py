"""Synapse's admin API, for what the appservice may not do itself: quarantine
an infected file (the scanner), delete a case's room with purge, its media and
its ghost user (data protection), prune notices (buergerchat_privacy module).

The appservice bot is no server admin, so this uses a dedicated admin account:
created by ``buergerchat run`` for the embedded Synapse (its token in the data
folder's secrets.yaml), or given by the operator as ``homeserver.
admin_token_file`` (or the older ``scanner.admin_token_file``) for an external
homeserver.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from .errors import BuergerchatError
from .homeserver import ADMIN_TOKEN_KEY, read_secret

log = logging.getLogger("buergerchat.synapse_admin")
_TIMEOUT = aiohttp.ClientTimeout(total=30)
#: How long a room deletion may take before the caller tries again later.
DELETE_WAIT_SECONDS = 120.0
#: The bridge's endpoints in Synapse (synapse/modules/buergerchat_privacy.py).
MODULE_PREFIX = "/_synapse/client/buergerchat"


class AdminTokenError(BuergerchatError):
    """No usable Synapse admin token; the scanner refuses to start without one."""

    errcode = "BC_SCANNER_ADMIN_TOKEN"


class QuarantineFailed(BuergerchatError):
    errcode = "BC_QUARANTINE_FAILED"


class AdminCallFailed(BuergerchatError):
    """Synapse refused or failed an admin call; the message says which and why."""

    errcode = "BC_SYNAPSE_ADMIN"


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
    """The admin token: from the ``admin_token_file`` if set, else (embedded
    Synapse) from secrets.yaml, where ``buergerchat run`` put it."""
    if token_file:
        path = Path(token_file)
        path = path if path.is_absolute() else config_dir / path
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise AdminTokenError(
                f"admin_token_file: cannot read {path} ({e.strerror}). "
                "Put a Synapse admin's access token into it."
            ) from None
        if not token or "CHANGE_ME" in token:
            raise AdminTokenError(
                f"admin_token_file: {path} holds no token yet. Put a "
                "Synapse admin's access token into it (one line)."
            )
        return token
    if not embedded:
        raise AdminTokenError(
            "homeserver.admin_token_file is required when homeserver.embedded is "
            "false: the scanner quarantines infected staff uploads and erasure "
            "deletes rooms, media and users through Synapse's admin API. Create an "
            "admin account on the homeserver and put its access token into that file."
        )
    stored = read_secret(data_dir, ADMIN_TOKEN_KEY)
    if not stored:
        raise AdminTokenError(
            f"{data_dir / 'secrets.yaml'} has no {ADMIN_TOKEN_KEY}; `buergerchat "
            "run` creates it when it starts the embedded Synapse."
        )
    return stored


class SynapseAdmin:
    """The admin API calls the bridge and its bots need."""

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

    # --- data protection ------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        ok_missing: bool = False,
    ) -> dict[str, Any] | None:
        """One admin call; None for 404 when ``ok_missing`` (already gone),
        AdminCallFailed for any other refusal or a network error."""
        try:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
                async with s.request(
                    method, f"{self.url}{path}", headers=self._headers, json=json
                ) as r:
                    if r.status == 404 and ok_missing:
                        return None
                    if r.status != 200:
                        raise AdminCallFailed(
                            f"Synapse answered {r.status} to {method} {path}: "
                            f"{(await r.text())[:300]}"
                        )
                    return dict(await r.json())
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AdminCallFailed(f"{method} {path} failed: {e}") from e

    async def room_media(self, room_id: str) -> list[str]:
        """The mxc:// URIs the room's events refer to (local and remote)."""
        found = await self._call(
            "GET", f"/_synapse/admin/v1/room/{quote(room_id)}/media", ok_missing=True
        )
        if found is None:
            return []
        return [*found.get("local", []), *found.get("remote", [])]

    async def delete_room(
        self, room_id: str, *, wait: float = DELETE_WAIT_SECONDS
    ) -> str:
        """Delete the room with purge (everyone removed, every event gone from
        the database) and wait until Synapse says it is complete; returns the
        final status. A deletion already running (an earlier attempt) is
        waited for instead of started twice."""
        room = quote(room_id)
        running = await self._running_deletion(room)
        if running is None:
            started = await self._call(
                "DELETE",
                f"/_synapse/admin/v2/rooms/{room}",
                json={"purge": True, "block": False, "message": "Gelöscht."},
            )
            assert started is not None
            running = str(started["delete_id"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            status = await self._call(
                "GET", f"/_synapse/admin/v2/rooms/delete_status/{running}"
            )
            assert status is not None
            state = str(status.get("status"))
            if state == "complete":
                return state
            if state == "failed":
                raise AdminCallFailed(
                    f"Synapse could not delete {room_id}: {status.get('error')}"
                )
            if loop.time() > deadline:
                raise AdminCallFailed(
                    f"deleting {room_id} still {state} after {wait:.0f} s"
                )
            await asyncio.sleep(0.5)

    async def _running_deletion(self, room: str) -> str | None:
        found = await self._call(
            "GET", f"/_synapse/admin/v2/rooms/{room}/delete_status", ok_missing=True
        )
        for result in (found or {}).get("results", []):
            if result.get("status") in (
                "scheduled",
                "active",
                "shutting_down",
                "purging",
            ):
                return str(result["delete_id"])
        return None

    async def delete_media(self, mxc: str) -> bool:
        """Delete one local file and its thumbnails; False if it was gone."""
        server, media_id = split_mxc(mxc)
        done = await self._call(
            "DELETE",
            f"/_synapse/admin/v1/media/{quote(server, safe='')}/"
            f"{quote(media_id, safe='')}",
            ok_missing=True,
        )
        return bool(done and done.get("total"))

    async def download_media(self, mxc: str) -> bytes | None:
        """A file's bytes (authenticated media); None if Synapse has it no more."""
        server, media_id = split_mxc(mxc)
        path = (
            f"/_matrix/client/v1/media/download/{quote(server, safe='')}/"
            f"{quote(media_id, safe='')}"
        )
        try:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
                async with s.get(f"{self.url}{path}", headers=self._headers) as r:
                    if r.status == 404:
                        return None
                    if r.status != 200:
                        raise AdminCallFailed(f"Synapse answered {r.status} to {path}")
                    return await r.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AdminCallFailed(f"download of {mxc} failed: {e}") from e

    async def erase_user(self, user_id: str) -> bool:
        """Deactivate the user and erase their profile and messages; False if
        there was no such user (a ghost that never joined)."""
        done = await self._call(
            "POST",
            f"/_synapse/admin/v1/deactivate/{quote(user_id)}",
            json={"erase": True},
            ok_missing=True,
        )
        return done is not None

    async def censor(self, event_ids: list[str]) -> int:
        """Prune redacted notices of the bot now (buergerchat_privacy module)."""
        if not event_ids:
            return 0
        done = await self._call(
            "POST", f"{MODULE_PREFIX}/censor", json={"event_ids": event_ids}
        )
        return len((done or {}).get("censored", []))

    async def compact(self) -> None:
        """SQLite: overwrite what was deleted in Synapse's files (module)."""
        await self._call("POST", f"{MODULE_PREFIX}/compact", json={})
