"""Synapse split into processes (``homeserver.workers`` in buergerchat.yaml),
after Synapse's workers documentation:

- **main**: everything not routed elsewhere (admin API, presence, typing,
  receipts, account data), background tasks, and the replication listener;
- **persister1**: the event persister (``stream_writers: events``), so writing
  events is not the main process's work;
- **client1…N**: generic workers for client and sync traffic; ``client1`` also
  pushes new events to the bridge (``notify_appservices_from_worker``);
- **media1**: the media repository (uploads, downloads, thumbnails, the media
  admin API the scanner and erasure use) and its background jobs;
- **nginx** on ``homeserver.port``: routes each request to its process (the
  client workers by the caller's access token, so one person's syncs stay on
  one worker and its caches).

They talk over Redis and share the PostgreSQL database. All listen on
127.0.0.1 only; nginx is the one address clients and the bridge use.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from .config import Config, SynapseWorkers
from .errors import BuergerchatError
from .supervisor import Alert, ChildProcess, Keeper, answers

MAIN = "main"
PERSISTER = "persister1"
MEDIA = "media1"

#: Routed to the client workers (Synapse docs, "generic_worker": the requests
#: it serves without a stream writer of its own). Typing, receipts, presence
#: and account data stay with the main process, which writes those streams.
CLIENT_PATHS = (
    r"^/_matrix/client/(r0|v3)/sync$",
    r"^/_matrix/client/(api/v1|r0|v3)/events$",
    r"^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/messages$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    r"^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    r"^/_matrix/client/versions$",
    r"^/_matrix/client/(r0|v3|unstable)/capabilities$",
    r"^/_matrix/client/(r0|v3|unstable)/keys/(query|changes|claim)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/"
    r"(join|invite|leave|ban|unban|kick)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
)
#: Routed to the media repository, the media admin API included.
MEDIA_PATHS = (
    r"^/_matrix/media/",
    r"^/_matrix/client/v1/media/",
    r"^/_synapse/admin/v1/(purge_)?media_cache$",
    r"^/_synapse/admin/v1/room/.*/media.*$",
    r"^/_synapse/admin/v1/user/.*/media.*$",
    r"^/_synapse/admin/v1/media/.*$",
    r"^/_synapse/admin/v1/quarantine_media/.*$",
    r"^/_synapse/admin/v1/users/.*/media$",
)


class NginxMissing(BuergerchatError):
    errcode = "BC_NGINX_MISSING"


@dataclass(frozen=True)
class Process:
    name: str
    #: The synapse.app module it runs.
    app: str
    #: Port of its HTTP listener for clients (None: replication only).
    http_port: int | None
    #: Its replication listener (main and stream writers).
    replication_port: int | None = None

    @property
    def ready_url(self) -> str:
        port = self.http_port or self.replication_port
        return f"http://127.0.0.1:{port}/health"


def layout(workers: SynapseWorkers) -> list[Process]:
    """Every Synapse process with its ports, main first."""
    port = workers.first_port
    processes = [
        Process(MAIN, "synapse.app.homeserver", port, port + 1),
        Process(PERSISTER, "synapse.app.generic_worker", None, port + 2),
        Process(MEDIA, "synapse.app.generic_worker", port + 3),
    ]
    processes += [
        Process(f"client{i}", "synapse.app.generic_worker", port + 3 + i)
        for i in range(1, workers.client_workers + 1)
    ]
    return processes


def main_settings(config: Config, processes: list[Process]) -> tuple[str, str]:
    """What homeserver.yaml gets beyond one process's settings: the main
    process's replication listener (an entry of ``listeners``) and the rest."""
    workers = config.homeserver.workers
    assert workers is not None
    main = processes[0]
    listener = {
        "port": main.replication_port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "resources": [{"names": ["replication"]}],
    }
    settings: dict[str, Any] = {
        "redis": {
            "enabled": True,
            "host": workers.redis_host,
            "port": workers.redis_port,
        },
        "instance_map": {
            p.name: {"host": "127.0.0.1", "port": p.replication_port}
            for p in processes
            if p.replication_port is not None
        },
        "stream_writers": {"events": [PERSISTER]},
        "notify_appservices_from_worker": "client1",
        "enable_media_repo": False,
        "media_instance_running_background_jobs": MEDIA,
    }
    return (
        textwrap.indent(yaml.safe_dump([listener], sort_keys=False), "  "),
        "# Synapse's workers (bridge/synapse_workers.py)\n"
        + yaml.safe_dump(settings, sort_keys=False),
    )


def worker_config(process: Process, synapse_dir: Path) -> dict[str, Any]:
    listeners = []
    if process.replication_port is not None:
        listeners.append(
            {
                "type": "http",
                "port": process.replication_port,
                "bind_addresses": ["127.0.0.1"],
                "resources": [{"names": ["replication"]}],
            }
        )
    if process.http_port is not None:
        names = ["media", "client"] if process.name == MEDIA else ["client"]
        listeners.append(
            {
                "type": "http",
                "port": process.http_port,
                "bind_addresses": ["127.0.0.1"],
                "x_forwarded": True,
                "resources": [{"names": names, "compress": False}],
            }
        )
    config: dict[str, Any] = {
        "worker_app": process.app,
        "worker_name": process.name,
        "worker_listeners": listeners,
        "worker_log_config": str(synapse_dir / f"log-{process.name}.yaml"),
    }
    if process.name == MEDIA:
        config["enable_media_repo"] = True
    return config


def render_workers(config: Config, synapse_dir: Path, log_template: str) -> None:
    """Each worker's config and log config, and nginx's, next to homeserver.yaml."""
    workers = config.homeserver.workers
    assert workers is not None
    processes = layout(workers)
    for process in processes[1:]:
        _write(
            synapse_dir / f"{process.name}.yaml",
            "# Rendered from bridge/synapse_workers.py at every start.\n"
            + yaml.safe_dump(worker_config(process, synapse_dir), sort_keys=False),
        )
        _write(
            synapse_dir / f"log-{process.name}.yaml",
            log_template.replace(
                str(synapse_dir / "homeserver.log"),
                str(synapse_dir / f"{process.name}.log"),
            ),
        )
    _write(synapse_dir / "nginx.conf", nginx_config(config, processes, synapse_dir))


def nginx_config(config: Config, processes: list[Process], synapse_dir: Path) -> str:
    hs = config.homeserver
    main = processes[0]
    media = next(p for p in processes if p.name == MEDIA)
    clients = [p for p in processes if p.name.startswith("client")]
    temp = synapse_dir / "nginx-temp"
    user = "user root;\n" if os.geteuid() == 0 else ""
    client_servers = "".join(f"    server 127.0.0.1:{p.http_port};\n" for p in clients)
    routes = (
        _locations(MEDIA_PATHS, "synapse_media")
        + _locations(CLIENT_PATHS, "synapse_client")
        + "    location / { proxy_pass http://synapse_main; }\n"
    )
    return f"""# Rendered from bridge/synapse_workers.py at every start: the one
# address of Synapse ({hs.url}); each request goes to the process serving it.
{user}worker_processes 1;
pid {synapse_dir / "nginx.pid"};
error_log {synapse_dir / "nginx-error.log"} warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  client_max_body_size {hs.max_upload_size_mb + 1}m;
  proxy_http_version 1.1;
  proxy_read_timeout 180s;
  proxy_request_buffering off;
  proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header Connection "";
  upstream synapse_main {{ server 127.0.0.1:{main.http_port}; keepalive 32; }}
  upstream synapse_media {{ server 127.0.0.1:{media.http_port}; keepalive 16; }}
  upstream synapse_client {{
    hash $http_authorization consistent;
{client_servers}    keepalive 64;
  }}
  server {{
    listen {hs.bind_address}:{hs.port};
{routes}  }}
}}
"""


def _locations(paths: tuple[str, ...], upstream: str) -> str:
    return "".join(
        f'    location ~ "{path}" {{ proxy_pass http://{upstream}; }}\n'
        for path in paths
    )


def nginx_argv(synapse_dir: Path) -> list[str]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        raise NginxMissing(
            "homeserver.workers needs nginx to route requests to Synapse's "
            "processes: install it (Debian: apt install nginx-light), or set "
            "homeserver.workers.enabled to false."
        )
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (synapse_dir / "nginx-temp" / sub).mkdir(parents=True, exist_ok=True)
    return [
        binary,
        "-e",
        str(synapse_dir / "nginx-error.log"),
        "-p",
        str(synapse_dir),
        "-c",
        str(synapse_dir / "nginx.conf"),
        "-g",
        "daemon off;",
    ]


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


class WorkerChildren:
    """The worker processes and nginx, as children of the run command (or of
    ``buergerchat synapse``): started after the main process, each watched and
    restarted when it dies, stopped before it."""

    def __init__(self, config: Config, synapse_dir: Path, env: dict[str, str]) -> None:
        assert config.homeserver.workers is not None
        self.config = config
        self.dir = synapse_dir
        self.env = env
        self.processes = layout(config.homeserver.workers)[1:]
        self.children: dict[str, ChildProcess] = {}
        self.ready: dict[str, Callable[[], Awaitable[bool]]] = {}
        self.keepers: list[Keeper] = []

    async def start(
        self, homeserver_yaml: Path, router_ready: Callable[[], Awaitable[bool]]
    ) -> None:
        for process in self.processes:
            self.children[process.name] = ChildProcess(
                f"synapse-{process.name}",
                [
                    sys.executable,
                    "-m",
                    process.app,
                    "-c",
                    str(homeserver_yaml),
                    "-c",
                    str(self.dir / f"{process.name}.yaml"),
                ],
                self.dir / f"stdout-{process.name}.log",
                env=self.env,
            )
            self.ready[process.name] = partial(answers, process.ready_url)
        self.children["nginx"] = ChildProcess(
            "nginx", nginx_argv(self.dir), self.dir / "stdout-nginx.log"
        )
        self.ready["nginx"] = router_ready
        # One after the other: on two cores, starting four Synapses at once
        # takes longer than in turn.
        for name, child in self.children.items():
            await child.start(self.ready[name], timeout=120)

    def keep_running(
        self, alert: Alert | None, on_death: Callable[[], object] | None
    ) -> None:
        for name, child in self.children.items():

            async def start(child: ChildProcess = child, name: str = name) -> None:
                await child.start(self.ready[name], timeout=120)

            keeper = Keeper(
                f"Synapse-{name}" if name != "nginx" else "nginx (Synapse)",
                start=start,
                wait=child.wait,
                alert=alert,
                # client1 holds the events not yet pushed to the bridge: after
                # its death they are looked for in the rooms (catch-up).
                on_death=on_death if name == "client1" else None,
            )
            keeper.watch()
            self.keepers.append(keeper)

    async def stop(self) -> None:
        for keeper in self.keepers:
            await keeper.stop()
        self.keepers.clear()
        for child in reversed(list(self.children.values())):
            await child.stop()
