"""docker-compose.yml cannot run here (no Docker engine), so its consistency with
the repository and the production config is checked instead."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from bridge.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def _mounts() -> list[tuple[str, str]]:
    mounts = []
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                mounts.append((source, volume))
    return mounts


@pytest.mark.parametrize(("source", "volume"), _mounts())
def test_every_mounted_file_exists(source: str, volume: str) -> None:
    """Each file or folder that docker-compose.yml mounts is in the repository."""
    assert (REPO / source).exists(), f"{volume}: {source} is missing"


def test_secrets_are_documented_and_ignored() -> None:
    """Each secret file compose reads is named in deploy/secrets/README.md and kept
    out of git."""
    readme = (REPO / "deploy/secrets/README.md").read_text(encoding="utf-8")
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8")
    assert "/deploy/secrets/*" in ignored
    for name, secret in COMPOSE["secrets"].items():
        assert secret["file"].startswith("./deploy/secrets/")
        assert name in readme


def _production_config_problems(tmp_path: Path) -> list[str]:
    """Load the config as the bridge container sees it (compose's two mounts)."""
    for volume in SERVICES["bridge"]["volumes"]:
        source, target = volume.split(":")[:2]
        if target.startswith("/config/"):
            (tmp_path / Path(target).name).write_bytes((REPO / source).read_bytes())
    try:
        load_config(tmp_path, tmp_path / "data")
    except ConfigError as e:
        return [str(p) for p in e.problems]
    return []


def test_production_config_only_lacks_real_passwords(tmp_path: Path) -> None:
    """deploy/config is valid except for the CHANGE_ME placeholders, which refuse
    to start."""
    problems = _production_config_problems(tmp_path)
    assert problems, "placeholder passwords were accepted"
    assert all("CHANGE_ME" in p for p in problems), problems


def test_ports_and_hosts_match_the_config() -> None:
    """The ports compose exposes and the hosts in the production config agree."""
    config = yaml.safe_load((REPO / "deploy/config/buergerchat.yaml").read_text())
    hs_url = urlparse(config["homeserver"]["url"])
    assert hs_url.hostname in SERVICES and str(hs_url.port) in SERVICES[
        hs_url.hostname]["expose"]
    assert config["homeserver"]["port"] == hs_url.port
    assert config["homeserver"]["bind_address"] == "0.0.0.0"
    assert config["homeserver"]["embedded"] is False
    as_url = urlparse(config["bridge"]["appservice_url"])
    assert as_url.hostname == "bridge"
    assert as_url.port == config["bridge"]["port"]
    assert str(config["bridge"]["port"]) in SERVICES["bridge"]["expose"]
    for key in ("homeserver", "bridge"):
        db = urlparse(config[key]["database"])
        assert db.hostname in SERVICES and db.username == (
            SERVICES["postgres"]["environment"]["POSTGRES_USER"])
    caddy = (REPO / "deploy/Caddyfile").read_text()
    for upstream in re.findall(r"reverse_proxy\s+(?:\S+\s+)?(\w[\w-]*):(\d+)", caddy):
        host, port = upstream
        assert host in SERVICES, host
        if host == "bridge":
            assert int(port) == config["bridge"]["port"]
        if host == "synapse":
            assert int(port) == hs_url.port


def test_element_points_at_the_production_homeserver() -> None:
    """Element Web's config names the same server as the production config."""
    element = json.loads((REPO / "element-theme/config.json").read_text())
    config = yaml.safe_load((REPO / "deploy/config/buergerchat.yaml").read_text())
    server = element["default_server_config"]["m.homeserver"]
    assert server["server_name"] == config["homeserver"]["server_name"]
    assert element["default_theme"] == "custom-" + (
        element["setting_defaults"]["custom_themes"][0]["name"])
