"""docker-compose.yml cannot run here (no Docker engine), so its consistency with
the repository and the production config is checked instead."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from bridge.cli import config_warnings
from bridge.config import Config, ConfigError, load_config
from bridge.homeserver import _SECRET_KEYS, Secrets, render

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
    assert (
        hs_url.hostname in SERVICES
        and str(hs_url.port) in SERVICES[hs_url.hostname]["expose"]
    )
    assert config["homeserver"]["port"] == hs_url.port
    assert config["homeserver"]["bind_address"] == "0.0.0.0"
    assert config["homeserver"]["embedded"] is False
    as_url = urlparse(config["bridge"]["appservice_url"])
    assert as_url.hostname == "bridge"
    assert as_url.port == config["bridge"]["port"]
    assert str(config["bridge"]["port"]) in SERVICES["bridge"]["expose"]
    for key in ("homeserver", "bridge"):
        db = urlparse(config[key]["database"])
        assert (
            db.hostname in SERVICES
            and db.username == (SERVICES["postgres"]["environment"]["POSTGRES_USER"])
        )
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
    assert (
        element["default_theme"]
        == "custom-" + (element["setting_defaults"]["custom_themes"][0]["name"])
    )


def _size(value: str) -> int:
    """clamd's size notation: 20M, 1024K or plain bytes."""
    units = {"K": 1 << 10, "M": 1 << 20}
    value = str(value).strip().upper()
    if value[-1:] in units:
        return int(value[:-1]) * units[value[-1]]
    return int(value)


def test_clamd_limits_hold_the_upload_limit() -> None:
    """Synapse's max_upload_size (= homeserver.max_upload_size_mb) ≤ clamd's
    StreamMaxLength ≤ MaxFileSize ≤ MaxScanSize, and clamd reports what it could
    not scan completely instead of passing it."""
    config = yaml.safe_load((REPO / "deploy/config/buergerchat.yaml").read_text())
    upload = config["homeserver"]["max_upload_size_mb"] << 20
    clamd = SERVICES["clamd"]["environment"]
    stream = _size(clamd["CLAMD_CONF_StreamMaxLength"])
    file_size = _size(clamd["CLAMD_CONF_MaxFileSize"])
    scan_size = _size(clamd["CLAMD_CONF_MaxScanSize"])
    assert upload <= stream <= file_size <= scan_size
    assert clamd["CLAMD_CONF_AlertExceedsMax"] == "yes"
    assert clamd.get("CLAMAV_NO_FRESHCLAMD", "false") == "false", "freshclam is off"
    assert "clamav-db:/var/lib/clamav" in SERVICES["clamd"]["volumes"]


def _production_config(tmp_path: Path) -> Config:
    """The production config with its placeholders filled, as the bridge loads it."""
    for volume in SERVICES["bridge"]["volumes"]:
        source, target = volume.split(":")[:2]
        if target.startswith("/config/"):
            text = (REPO / source).read_text(encoding="utf-8")
            (tmp_path / Path(target).name).write_text(
                text.replace("CHANGE_ME", "secret"), encoding="utf-8"
            )
    return load_config(tmp_path, tmp_path / "data")


def test_synapse_scans_with_the_compose_clamd(tmp_path: Path) -> None:
    """The homeserver.yaml that bridge-init renders loads our module with the
    clamd service's address, and compose builds Synapse with that module."""
    config = _production_config(tmp_path)
    secrets = Secrets({k: "x" for k in _SECRET_KEYS})
    homeserver = yaml.safe_load(render(config, secrets).read_text(encoding="utf-8"))
    teams, privacy, module = homeserver["modules"]
    assert teams["module"] == "buergerchat_teams.BuergerchatTeams"
    assert teams["config"]["bot"] == config.bot_mxid
    assert privacy["module"] == "buergerchat_privacy.BuergerchatPrivacy"
    # compose's Synapse image carries every module, and the log filter
    dockerfile = (REPO / "deploy" / "synapse" / "Dockerfile").read_text(
        encoding="utf-8"
    )
    for name in ("teams", "scan", "privacy", "logfilter"):
        assert f"buergerchat_{name}.py" in dockerfile
    assert module["module"] == "buergerchat_scan.BuergerchatScan"
    address = urlparse(module["config"]["clamd"])
    assert address.hostname == "clamd" and address.hostname in SERVICES
    assert str(address.port) in SERVICES["clamd"]["expose"]
    assert module["config"]["max_upload_size"] == config.plugin("scanner").max_size
    build = SERVICES["synapse"]["build"]
    assert (REPO / build.get("context", ".") / build["dockerfile"]).is_file()


def test_synapse_image_carries_everything_the_module_imports(tmp_path: Path) -> None:
    """The files deploy/synapse/Dockerfile copies are enough to import the module
    with only Synapse's Python (no bridge package installed)."""
    dockerfile = (REPO / "deploy/synapse/Dockerfile").read_text(encoding="utf-8")
    root = tmp_path / "buergerchat"
    text = dockerfile.replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        *sources, target = words[1:]
        assert target.startswith("/buergerchat/"), line
        folder = root / target.removeprefix("/buergerchat/")
        folder.mkdir(parents=True, exist_ok=True)
        for source in sources:
            (folder / Path(source).name).write_bytes((REPO / source).read_bytes())
    assert "ENV PYTHONPATH=/buergerchat" in dockerfile
    probe = (
        "import sys\n"
        # Hide the editable install of this checkout, as the image has none.
        "sys.meta_path = [f for f in sys.meta_path\n"
        "                 if 'editable' not in getattr(f, '__module__', '')]\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "import buergerchat_scan, bots.scanner.clamd_client as c\n"
        f"assert c.__file__.startswith({str(root)!r}), c.__file__\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_bridge_gets_the_admin_token_secret() -> None:
    """homeserver.admin_token_file names the docker secret the bridge service
    mounts (quarantine, erasure)."""
    config = yaml.safe_load((REPO / "deploy/config/buergerchat.yaml").read_text())
    path = Path(config["homeserver"]["admin_token_file"])
    assert path.parent == Path("/run/secrets")
    assert path.name in SERVICES["bridge"]["secrets"]
    assert path.name in COMPOSE["secrets"]


SYNAPSE_PATHS = ("/_matrix/client/*", "/_matrix/media/*", "/_synapse/client/*")


def test_the_proxy_passes_only_what_citizens_and_staff_need() -> None:
    """Caddy forwards the citizen API, widget, demo and health to the bridge and
    only the client, media and SSO paths to Synapse: no admin API, no
    federation, and every Server header removed."""
    caddy = (REPO / "deploy/Caddyfile").read_text()
    paths = re.findall(r"reverse_proxy\s+(/\S*)\s+(\w[\w-]*):", caddy)
    assert ("/_matrix/client/*", "synapse") in paths
    for path, host in paths:
        assert not path.startswith(("/_synapse/admin", "/_matrix/federation")), path
        if host == "synapse":
            assert path in (
                "/_matrix/client/*",
                "/_matrix/media/*",
                "/_synapse/client/*",
            )
    assert "respond /_synapse/client/buergerchat/* 404" in caddy
    assert ("/privacy", "bridge") in paths
    blocks = caddy.count("reverse_proxy")
    assert caddy.count("header_down -Server") == blocks
    assert caddy.count("header -Server") == caddy.count(" {\n") - blocks


def test_only_the_proxy_is_published_and_the_bridge_trusts_only_it(
    tmp_path: Path,
) -> None:
    """No service but the proxy publishes a port; the proxy has a fixed address
    in a fixed network, and exactly that address is the bridge's trusted proxy
    (so X-Forwarded-For cannot be forged from anywhere else). The production
    config names the town's website as the one allowed origin."""
    published = [name for name, svc in SERVICES.items() if svc.get("ports")]
    assert published == ["proxy"]
    proxy_ip = SERVICES["proxy"]["networks"]["default"]["ipv4_address"]
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    config = _production_config(tmp_path)
    assert [str(n) for n in config.limits.trusted_proxies] == [f"{proxy_ip}/32"]
    assert config.bridge.allowed_origins == ("https://www.musterstadt.example",)
    assert config_warnings(config) == []


def test_the_rendered_synapse_is_closed(tmp_path: Path) -> None:
    """Registration and guest access off, no federation partner, no key server,
    no URL previews, no metrics: what a town's staff server needs, nothing more."""
    config = _production_config(tmp_path)
    secrets = Secrets({k: "x" for k in _SECRET_KEYS})
    homeserver = yaml.safe_load(render(config, secrets).read_text(encoding="utf-8"))
    assert homeserver["enable_registration"] is False
    assert homeserver["allow_guest_access"] is False
    assert homeserver["federation_domain_whitelist"] == []
    assert homeserver["trusted_key_servers"] == []
    assert homeserver["url_preview_enabled"] is False
    assert homeserver["enable_metrics"] is False
    (listener,) = homeserver["listeners"]
    assert [r["names"] for r in listener["resources"]] == [["client"]]


def test_check_config_warns_about_an_open_production_config(tmp_path: Path) -> None:
    """'*' as allowed origin and no trusted proxy are fine on localhost, and
    warned about on a town's public address."""
    config = _production_config(tmp_path)
    open_config = replace(
        config,
        bridge=replace(config.bridge, allowed_origins=("*",)),
        limits=replace(config.limits, trusted_proxies=()),
    )
    warnings = config_warnings(open_config)
    assert len(warnings) == 2
    assert "allowed_origins" in warnings[0] and "trusted_proxies" in warnings[1]
    local = replace(
        open_config,
        bridge=replace(open_config.bridge, public_url="http://127.0.0.1:8080"),
    )
    assert config_warnings(local) == []
