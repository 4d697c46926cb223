"""The embedded Synapse: secrets generated once, config rendered from the
templates in ``synapse/``, the process started and supervised, demo staff created."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import aiohttp
import yaml

from .config import Config
from .errors import BuergerchatError
from .federation import synapse_values as federation_values
from .plugins import plugin_hooks
from .supervisor import Alert, ChildProcess, Keeper, answers
from .synapse_workers import WorkerChildren, layout, main_settings, render_workers

log = logging.getLogger("buergerchat.homeserver")
TEMPLATES = Path(__file__).resolve().parent.parent / "synapse"
#: The scanner's admin account (quarantine of infected media) and its token's key.
ADMIN_LOCALPART = "buergerchat-admin"
ADMIN_TOKEN_KEY = "synapse_admin_token"
_SECRET_KEYS = (
    "as_token",
    "hs_token",
    "registration_shared_secret",
    "macaroon_secret_key",
    "form_secret",
    # The bridge's own: the HMAC key of client addresses (bridge.blocks).
    "client_key_secret",
)


class HomeserverError(BuergerchatError):
    errcode = "BC_HOMESERVER"


@dataclass(frozen=True)
class Secrets:
    values: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]


def load_secrets(data_dir: Path) -> Secrets:
    """Read ``secrets.yaml`` from the data folder, generating missing values once."""
    path = data_dir / "secrets.yaml"
    values: dict[str, str] = {}
    if path.exists():
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    changed = False
    for key in _SECRET_KEYS:
        if not values.get(key):
            values[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        save_secrets(data_dir, values)
    return Secrets(values)


def save_secrets(data_dir: Path, values: dict[str, str]) -> None:
    path = data_dir / "secrets.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(
        "# Generated once by Bürgerchat; keep it secret and keep it.\n"
        + yaml.safe_dump(values, sort_keys=True),
        encoding="utf-8",
    )
    tmp.replace(path)


def _database_block(setting: str, synapse_dir: Path) -> str:
    if setting == "sqlite":
        db = {
            "name": "sqlite3",
            "args": {"database": str(synapse_dir / "homeserver.db")},
        }
    else:
        url = urlparse(setting)
        args = {
            "user": url.username or "postgres",
            "dbname": url.path.lstrip("/") or "synapse",
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "cp_min": 2,
            "cp_max": 10,
        }
        if url.password:
            args["password"] = url.password
        db = {"name": "psycopg2", "args": args}
    return yaml.safe_dump({"database": db}, sort_keys=False)


def synapse_modules(config: Config) -> str:
    """The ``modules:`` entries: the core's (staff join their team room at
    once, so routing sees their presence: synapse/modules/buergerchat_teams.py;
    erasure leaves nothing in Synapse's files: buergerchat_privacy.py) and the
    bots' (the scanner's upload check)."""
    modules = [
        {
            "module": "buergerchat_teams.BuergerchatTeams",
            "config": {"bot": config.bot_mxid},
        },
        {
            "module": "buergerchat_privacy.BuergerchatPrivacy",
            "config": {"bot": config.bot_mxid},
        },
        *(m for answer in plugin_hooks(config, "synapse_modules") for m in answer),
    ]
    return yaml.safe_dump({"modules": modules}, sort_keys=False)


def synapse_retention(config: Config) -> dict[str, str]:
    """Data minimisation in homeserver.yaml, from ``retention:``: how long
    redacted content and staff addresses stay, and a safety net for media the
    bridge did not delete itself (never shorter than a case is kept)."""
    retention = config.retention
    longest = max(
        [retention.cases.longest()]
        + [config.case_retention(d.id).longest() for d in config.departments]
    )
    return {
        "redaction_retention_period": f"{retention.redaction_retention_days}d",
        "user_ips_max_age": f"{max(retention.user_ips_days, 1)}d",
        # Unused for this long after the longest case period: gone (a case's
        # own media are deleted with it; this catches anything else).
        "local_media_lifetime": f"{longest + 30}d",
    }


def render(config: Config, secrets_: Secrets, modules: str = "") -> Path:
    """Write homeserver.yaml, log.yaml and the appservice registration."""
    hs = config.homeserver
    synapse_dir = config.data_dir / "synapse"
    (synapse_dir / "media_store").mkdir(parents=True, exist_ok=True)
    main_port, extra_listeners, workers = hs.port, "", ""
    if hs.workers is not None:
        processes = layout(hs.workers)
        main_port = processes[0].http_port or hs.port
        extra_listeners, workers = main_settings(config, processes)
    values = {
        "server_name": hs.server_name,
        "server_name_regex": re.escape(hs.server_name),
        "public_baseurl": hs.url.rstrip("/") + "/",
        "port": main_port,
        "extra_listeners": extra_listeners,
        "workers": workers,
        "synapse_dir": synapse_dir,
        "database": _database_block(hs.database, synapse_dir),
        "max_upload_size_mb": hs.max_upload_size_mb,
        "bridge_url": config.bridge.appservice_url,
        # With workers nginx listens there; the main process behind it.
        "bind_address": hs.bind_address if hs.workers is None else "127.0.0.1",
        "bot_localpart": config.bridge.bot_localpart,
        "ghost_prefix": config.bridge.ghost_prefix,
        "modules": synapse_modules(config) + modules,
        **synapse_retention(config),
        **federation_values(config.federation, synapse_dir),
        **secrets_.values,
    }
    for name in ("homeserver.yaml", "log.yaml", "appservice-registration.yaml"):
        template = Template((TEMPLATES / f"{name}.tmpl").read_text(encoding="utf-8"))
        target = synapse_dir / name
        target.write_text(template.substitute(values), encoding="utf-8")
        target.chmod(0o600)
    if hs.workers is not None:
        render_workers(config, synapse_dir, (synapse_dir / "log.yaml").read_text())
    return synapse_dir / "homeserver.yaml"


async def versions_answer(url: str) -> bool:
    return await answers(f"{url}/_matrix/client/versions")


class EmbeddedSynapse:
    """Synapse as a supervised child process of the run command."""

    def __init__(self, config: Config, secrets_: Secrets, modules: str = "") -> None:
        self.config = config
        self.secrets = secrets_
        self.modules = modules
        self.dir = config.data_dir / "synapse"
        self.url = f"http://127.0.0.1:{config.homeserver.port}"
        #: The main process's own address (behind nginx with workers).
        self.main_url = self.url
        self.workers: WorkerChildren | None = None
        if config.homeserver.workers is not None:
            main = layout(config.homeserver.workers)[0]
            self.main_url = f"http://127.0.0.1:{main.http_port}"
            self.workers = WorkerChildren(
                config, self.dir, env={"PYTHONPATH": module_path()}
            )
        self.child: ChildProcess | None = None
        self.keeper: Keeper | None = None

    async def start(self) -> None:
        if await versions_answer(self.main_url):
            await self._wait_for_orphan()
        if await versions_answer(self.main_url):
            raise HomeserverError(
                f"Something already answers on {self.url}. Stop it, or set "
                "homeserver.port in buergerchat.yaml to a free port."
            )
        path = render(self.config, self.secrets, self.modules)
        if not self._has_keys():
            # An empty file from a keygen stopped half-way would stop Synapse
            # ("No signing keys in file") on every start: made anew.
            (self.dir / "signing.key").unlink(missing_ok=True)
            keygen = ChildProcess(
                "synapse-keygen",
                [
                    sys.executable,
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(path),
                    "--generate-keys",
                ],
                self.dir / "keygen.log",
            )
            await keygen.start(self._keys_written, timeout=60)
            await keygen.stop()
        self.child = ChildProcess(
            "synapse",
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(path)],
            self.dir / "stdout.log",
            env={"PYTHONPATH": module_path()},
        )
        await self._start_child()
        if self.workers is not None:
            await self.workers.start(path, lambda: versions_answer(self.url))
        await ensure_admin_token(self.url, self.config.data_dir, self.secrets)

    async def _start_child(self) -> None:
        assert self.child is not None
        await self.child.start(lambda: versions_answer(self.main_url), timeout=120)

    def keep_running(
        self, alert: Alert | None = None, on_death: Callable[[], object] | None = None
    ) -> Keeper:
        """Restart Synapse with backoff whenever it dies (see Keeper)."""
        assert self.child is not None
        self.keeper = Keeper(
            "Synapse",
            start=self._start_child,
            wait=self.child.wait,
            alert=alert,
            on_death=on_death,
        )
        self.keeper.watch()
        if self.workers is not None:
            self.workers.keep_running(alert, on_death)
        return self.keeper

    async def _wait_for_orphan(self, grace: float = 30.0) -> None:
        """A Synapse of this data folder left by a killed bridge is stopping (it
        got SIGTERM when its parent died): wait for it, end it if it lingers."""
        pid = _our_synapse_pid(self.dir)
        if pid is None:
            return
        log.warning("Synapse pid %d of this data folder is still running; waiting", pid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        signalled = False
        while _alive(pid):
            if loop.time() > deadline:
                if signalled:
                    os.kill(pid, signal.SIGKILL)
                    break
                os.kill(pid, signal.SIGTERM)
                signalled, deadline = True, loop.time() + 10
            await asyncio.sleep(0.2)

    def _has_keys(self) -> bool:
        """The signing key file is complete: ``ed25519 <version> <key>`` and a
        newline (Synapse writes it in one go, but a reader can come between the
        file's creation and its content)."""
        try:
            text = (self.dir / "signing.key").read_text(encoding="ascii")
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        return text.endswith("\n") and len(text.split()) >= 3

    async def _keys_written(self) -> bool:
        return self._has_keys()

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.stop()
        if self.workers is not None:
            await self.workers.stop()
        if self.child is not None:
            await self.child.stop()


def _our_synapse_pid(synapse_dir: Path) -> int | None:
    """The pid in our homeserver.pid, if that process is a Synapse with our config."""
    try:
        pid = int((synapse_dir / "homeserver.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    if "synapse.app.homeserver" in cmdline and str(synapse_dir) in cmdline:
        return pid
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie is as good as gone
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def module_path() -> str:
    """PYTHONPATH for Synapse: our modules folder (not the repository root, whose
    ``synapse/`` templates folder must never shadow matrix-synapse)."""
    paths = [str(TEMPLATES / "modules")]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(paths)


async def ensure_admin_token(url: str, data_dir: Path, secrets_: Secrets) -> str:
    """A Synapse admin's access token for the scanner (quarantine of infected
    media), created once through shared-secret registration and kept in
    secrets.yaml (mode 0600); a token Synapse no longer knows is replaced."""
    values = secrets_.values
    token = values.get(ADMIN_TOKEN_KEY)
    if token and await _token_works(url, token):
        return token
    password = values.get("synapse_admin_password") or secrets.token_urlsafe(24)
    answer = await _register(
        url,
        values["registration_shared_secret"],
        ADMIN_LOCALPART,
        password,
        displayname="Bürgerchat Admin",
        admin=True,
    )
    if answer is None:  # exists already (token lost): log in with the password
        answer = await _login(url, ADMIN_LOCALPART, password)
    values["synapse_admin_password"] = password
    values[ADMIN_TOKEN_KEY] = answer["access_token"]
    save_secrets(data_dir, values)
    return values[ADMIN_TOKEN_KEY]


def read_secret(data_dir: Path, key: str) -> str | None:
    """One value of secrets.yaml, without generating anything."""
    path = data_dir / "secrets.yaml"
    if not path.exists():
        return None
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    value = values.get(key)
    return str(value) if value else None


async def _token_works(url: str, token: str) -> bool:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.get(
            f"{url}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            if response.status == 200:
                return True
            if response.status == 401:
                return False
            raise HomeserverError(
                f"Synapse answered {response.status} when checking the admin token"
            )


async def _login(url: str, localpart: str, password: str) -> dict[str, str]:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart},
        "password": password,
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.post(f"{url}/_matrix/client/v3/login", json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise HomeserverError(
                    f"Synapse refused the login of {localpart} "
                    f"({data.get('error', data)}). Its password in secrets.yaml "
                    "does not match: reset it with Synapse's admin API, or delete "
                    "the account, then start again."
                )
            return data


async def register_user(
    homeserver_url: str,
    shared_secret: str,
    localpart: str,
    password: str,
    *,
    displayname: str | None = None,
    admin: bool = False,
) -> bool:
    """Create an account with Synapse's shared-secret admin API; False if it exists."""
    answer = await _register(
        homeserver_url,
        shared_secret,
        localpart,
        password,
        displayname=displayname,
        admin=admin,
    )
    return answer is not None


async def _register(
    homeserver_url: str,
    shared_secret: str,
    localpart: str,
    password: str,
    *,
    displayname: str | None = None,
    admin: bool = False,
) -> dict[str, str] | None:
    """Synapse's answer (with ``access_token``), or None if the account exists."""
    endpoint = f"{homeserver_url}/_synapse/admin/v1/register"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.get(endpoint) as response:
            nonce = (await response.json())["nonce"]
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            # The MAC covers the fields above, joined by NUL without a trailing one.
            "mac": _mac(shared_secret, nonce, localpart, password, admin),
        }
        if displayname:
            body["displayname"] = displayname
        async with s.post(endpoint, json=body) as response:
            data = await response.json()
            if response.status == 200:
                return dict(data)
            if data.get("errcode") == "M_USER_IN_USE":
                return None
            raise HomeserverError(
                f"Synapse refused to create {localpart}: {data.get('error', data)}"
            )


def _mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    message = "\x00".join([nonce, user, password, "admin" if admin else "notadmin"])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest()
