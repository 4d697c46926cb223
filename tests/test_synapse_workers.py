"""The rendered worker setup (bridge/synapse_workers.py), read back by
Synapse's own config loader and checked by ``nginx -t``; the compose file
for it checked against docker-compose.yml and the production config. The
setup running is tests/e2e/test_synapse_workers.py."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from signedjson.key import generate_signing_key, write_signing_keys
from synapse.config.homeserver import HomeServerConfig

from bridge.config import Config, ConfigError, SynapseWorkers, load_config
from bridge.homeserver import _SECRET_KEYS, Secrets, render
from bridge.synapse_workers import CLIENT_PATHS, MEDIA_PATHS, layout, nginx_argv

from .test_compose import REPO, SERVICES, _production_config
from .unit.test_config import config_copy

OVERRIDE = yaml.safe_load((REPO / "deploy/docker-compose.workers.yml").read_text())


def with_workers(config: Config, clients: int = 2) -> Config:
    workers = SynapseWorkers(
        client_workers=clients, redis_host="redis", redis_port=6379, first_port=8108
    )
    return replace(config, homeserver=replace(config.homeserver, workers=workers))


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Config, Path]:
    # Synapse imports the modules homeserver.yaml names, as it would at start.
    monkeypatch.syspath_prepend(str(REPO / "synapse" / "modules"))
    config = with_workers(_production_config(tmp_path))
    path = render(config, Secrets({k: "x" for k in _SECRET_KEYS}))
    with (path.parent / "signing.key").open("w") as key_file:
        write_signing_keys(key_file, [generate_signing_key("a_test")])
    return config, path.parent


def synapse_reads(synapse_dir: Path, worker: str | None) -> HomeServerConfig:
    """What a Synapse process started with these files would run with."""
    argv = ["-c", str(synapse_dir / "homeserver.yaml")]
    if worker is not None:
        argv += ["-c", str(synapse_dir / f"{worker}.yaml")]
    return HomeServerConfig.load_config("test", argv)


def test_synapse_accepts_every_process_and_they_agree(
    rendered: tuple[Config, Path],
) -> None:
    config, synapse_dir = rendered
    processes = layout(config.homeserver.workers)  # type: ignore[arg-type]
    names = [p.name for p in processes]
    assert names == ["main", "persister1", "media1", "client1", "client2"]
    ports = [
        port
        for p in processes
        for port in (p.http_port, p.replication_port)
        if port is not None
    ]
    assert len(ports) == len(set(ports)) and config.homeserver.port not in ports
    main = synapse_reads(synapse_dir, None)
    # Replication over Redis; the persister writes events and is reachable.
    assert main.redis.redis_enabled and main.redis.redis_host == "redis"
    assert main.worker.writers.events == ["persister1"]
    assert set(main.worker.instance_map) == {"main", "persister1"}
    assert main.worker.instance_map["persister1"].port == processes[1].replication_port
    assert main.worker.instance_map["main"].port == processes[0].replication_port
    # Main process: no media, no pushes to the bridge, listens on 127.0.0.1 only.
    assert not main.media.can_load_media_repo
    assert not main.worker.should_notify_appservices
    assert all(
        addr == "127.0.0.1"
        for lst in main.server.listeners
        for addr in lst.bind_addresses
    )
    for process in processes[1:]:
        worker = synapse_reads(synapse_dir, process.name)
        assert worker.worker.worker_name == process.name
        assert worker.worker.should_notify_appservices == (process.name == "client1")
        assert worker.media.can_load_media_repo == (process.name == "media1")
        listened = {lst.port for lst in worker.worker.worker_listeners}
        assert listened == {
            p for p in (process.http_port, process.replication_port) if p
        }
        # Each writes its own log (no two processes rotating one file).
        log_config = yaml.safe_load(Path(worker.worker.worker_log_config).read_text())
        assert log_config["handlers"]["file"]["filename"].endswith(
            f"/{process.name}.log"
        )


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_nginx_accepts_the_router_and_routes_as_documented(
    rendered: tuple[Config, Path],
) -> None:
    config, synapse_dir = rendered
    argv = nginx_argv(synapse_dir)
    check = subprocess.run(
        [*argv[:-2], "-t"], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    text = (synapse_dir / "nginx.conf").read_text()
    assert f"listen {config.homeserver.bind_address}:{config.homeserver.port};" in text
    for path in CLIENT_PATHS:
        assert f'location ~ "{path}" {{ proxy_pass http://synapse_client; }}' in text
    for path in MEDIA_PATHS:
        assert f'location ~ "{path}" {{ proxy_pass http://synapse_media; }}' in text
    # Media before client paths: /_matrix/client/v1/media/ is the media worker's.
    assert text.index("synapse_media; }") < text.index("synapse_client; }")
    assert "hash $http_authorization consistent;" in text


def test_workers_need_postgresql_and_a_redis_address(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["homeserver"]["workers"] = {"enabled": True, "redis": "localhost"}

    with pytest.raises(ConfigError) as e:
        load_config(config_copy(tmp_path, change), tmp_path / "data")
    text = str(e.value)
    assert "homeserver.workers.enabled" in text and "PostgreSQL" in text
    assert "homeserver.workers.redis" in text and "host:port" in text


def test_the_compose_override_runs_the_workers_beside_redis() -> None:
    synapse = OVERRIDE["services"]["synapse"]
    assert synapse["command"] == ["buergerchat", "synapse"]
    assert "redis" in synapse["depends_on"] and "redis" in SERVICES
    for volume in synapse["volumes"]:
        source = volume.split(":", 1)[0]
        if source.startswith("."):
            assert (REPO / source).exists(), volume
        else:
            assert source in SERVICES["synapse"]["volumes"][0], volume
    deploy = yaml.safe_load((REPO / "deploy/config/buergerchat.yaml").read_text())
    workers = deploy["homeserver"]["workers"]
    host, port = workers["redis"].split(":")
    assert host in SERVICES and port == "6379"
    # nginx in the image the override uses.
    assert "nginx-light" in (REPO / "Dockerfile").read_text()
