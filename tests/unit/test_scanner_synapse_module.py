"""The Synapse media module (synapse/modules/buergerchat_scan.py) against a real
clamd, with Synapse's ModuleApi replaced by a recorder that runs the thread hop the
way Synapse does; and the module block the run command renders into homeserver.yaml."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from synapse.api.errors import Codes, SynapseError
from synapse.module_api import NOT_SPAM

from bots.scanner.clamd_runner import TESTFILES_DIR, ClamdProcess, eicar
from bridge.config import load_config
from bridge.homeserver import Secrets, module_path, render

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "synapse" / "modules"))

from buergerchat_scan import (  # noqa: E402
    BuergerchatScan,
    ConfigError,
    ScanConfig,
)

MB = 1 << 20


class FakeModuleApi:
    """Records the registered callback; defer_to_thread runs in a real thread."""

    def __init__(self) -> None:
        self.callbacks: dict[str, Callable[..., Any]] = {}
        self.threads_used = 0

    def register_spam_checker_callbacks(self, **callbacks: Any) -> None:
        self.callbacks.update(callbacks)

    async def defer_to_thread(self, f: Callable[..., Any], *args: Any) -> Any:
        self.threads_used += 1
        return await asyncio.to_thread(f, *args)


@dataclass
class FileWrapper:
    path: str


@dataclass
class FileInfo:
    file_id: str
    thumbnail: object | None = None
    server_name: str | None = None


@pytest.fixture(scope="module")
async def clamd(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ClamdProcess]:
    async with ClamdProcess(
        tmp_path_factory.mktemp("clamd"), max_upload_size=2 * MB
    ) as process:
        yield process


def module_for(address: str, **extra: Any) -> tuple[BuergerchatScan, FakeModuleApi]:
    api = FakeModuleApi()
    config = BuergerchatScan.parse_config({"clamd": address, **extra})
    return BuergerchatScan(config, api), api  # type: ignore[arg-type]


async def check(
    module: BuergerchatScan, tmp_path: Path, data: bytes, **info: Any
) -> Any:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return await module.check_media_file_for_spam(
        FileWrapper(str(path)), FileInfo("abc", **info)
    )


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_clean_file_is_not_spam(
    clamd: ClamdProcess, tmp_path: Path, transport: str
) -> None:
    """A clean file passes, scanned off the reactor thread, over TCP or a socket."""
    address = (
        f"tcp://127.0.0.1:{clamd.port}"
        if transport == "tcp"
        else f"unix:{clamd.unix_socket}"
    )
    module, api = module_for(address)
    assert (
        api.callbacks["check_media_file_for_spam"] == module.check_media_file_for_spam
    )
    assert await check(module, tmp_path, b"%PDF-1.4\n%%EOF\n") == NOT_SPAM
    assert api.threads_used == 1


@pytest.mark.parametrize(
    "data",
    [eicar(), (TESTFILES_DIR / "clam.pdf").read_bytes()],
    ids=["eicar", "clam.pdf"],
)
async def test_infected_file_is_refused_with_its_signature(
    clamd: ClamdProcess, tmp_path: Path, data: bytes
) -> None:
    """Infected: 403 M_FORBIDDEN with a message and the signature for the client."""
    module, _ = module_for(f"unix:{clamd.unix_socket}")
    with pytest.raises(SynapseError) as caught:
        await check(module, tmp_path, data)
    assert caught.value.code == 403
    assert caught.value.errcode == Codes.FORBIDDEN
    assert "Schadsoftware" in caught.value.msg
    json = caught.value.error_dict(None)
    assert json["de.buergerchat.signature"].endswith(".UNOFFICIAL")


async def test_clamd_down_refuses_the_upload(tmp_path: Path) -> None:
    """Fail closed: no clamd, no upload (503 with what to do)."""
    module, _ = module_for(f"unix:{tmp_path / 'gone.sock'}")
    with pytest.raises(SynapseError) as caught:
        await check(module, tmp_path, b"harmless")
    assert caught.value.code == 503
    assert "try again later" in caught.value.msg


async def test_file_over_the_stream_limit_is_refused_as_too_large(
    clamd: ClamdProcess, tmp_path: Path
) -> None:
    """A file longer than max_upload_size is not sent to clamd but refused, 413."""
    module, _ = module_for(f"unix:{clamd.unix_socket}", max_upload_size=MB)
    with pytest.raises(SynapseError) as caught:
        await check(module, tmp_path, bytes(MB + 1))
    assert (caught.value.code, caught.value.errcode) == (413, Codes.TOO_LARGE)


async def test_thumbnails_are_not_scanned_again(tmp_path: Path) -> None:
    """Thumbnails Synapse makes from a scanned image pass without clamd (which is
    not even running here)."""
    module, api = module_for(f"unix:{tmp_path / 'gone.sock'}")
    assert await check(module, tmp_path, eicar(), thumbnail=object()) == NOT_SPAM
    assert api.threads_used == 0


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "config.clamd"),
        ({"clamd": "clamd:3310"}, "config.clamd"),
        ({"clamd": "tcp://clamd:3310", "scan_timeout_seconds": 0}, "scan_timeout"),
        ({"clamd": "tcp://clamd:3310", "max_upload_size": "20M"}, "max_upload_size"),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], key: str) -> None:
    """A wrong module config stops Synapse with the key at fault."""
    with pytest.raises(ConfigError, match=key):
        BuergerchatScan.parse_config(config)


def test_good_config_builds_the_client() -> None:
    config = BuergerchatScan.parse_config(
        {"clamd": "tcp://clamd:3310", "scan_timeout_seconds": 5, "max_upload_size": MB}
    )
    assert isinstance(config, ScanConfig)
    assert config.client.address == "clamd:3310"
    assert config.client.scan_timeout == 5
    assert config.client.max_stream_length == MB


def rendered(tmp_path: Path, scanner: dict[str, Any]) -> dict[str, Any]:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config", config_dir)
    main = config_dir / "buergerchat.yaml"
    data = yaml.safe_load(main.read_text(encoding="utf-8"))
    data["scanner"] = {**data.get("scanner", {}), **scanner}
    main.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(config_dir, tmp_path / "data")
    secrets = Secrets(
        {
            k: "x"
            for k in (
                "as_token",
                "hs_token",
                "registration_shared_secret",
                "macaroon_secret_key",
                "form_secret",
            )
        }
    )
    path = render(config, secrets)
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_run_renders_the_module_with_the_embedded_clamd(tmp_path: Path) -> None:
    """Embedded clamd: Synapse asks its socket in the data folder, with the same
    upload limit as max_upload_size."""
    homeserver = rendered(tmp_path, {"clamd": "embedded"})
    (module,) = scan_modules(homeserver)
    assert module["module"] == "buergerchat_scan.BuergerchatScan"
    assert module["config"]["clamd"] == f"unix:{tmp_path}/data/clamd/clamd.sock"
    assert module["config"]["max_upload_size"] == 20 * MB
    assert homeserver["max_upload_size"] == "20M"


def test_run_renders_an_external_clamd_and_can_leave_the_module_out(
    tmp_path: Path,
) -> None:
    """An external clamd is passed on as given; synapse_module: false renders none."""
    (module,) = scan_modules(rendered(tmp_path / "a", {"clamd": "tcp://clamd:3310"}))
    assert module["config"]["clamd"] == "tcp://clamd:3310"
    assert not scan_modules(rendered(tmp_path / "b", {"synapse_module": False}))


def scan_modules(homeserver: dict[str, Any]) -> list[dict[str, Any]]:
    """The scanner's entries among the modules (the core's team module is
    always there)."""
    return [
        m
        for m in homeserver.get("modules", [])
        if m["module"] == "buergerchat_scan.BuergerchatScan"
    ]


def test_synapse_finds_the_module_but_not_the_templates_folder() -> None:
    """Synapse's PYTHONPATH names synapse/modules, never the repository root (whose
    synapse/ folder of templates would shadow matrix-synapse)."""
    first = module_path().split(":")[0]
    assert Path(first) == REPO / "synapse" / "modules"
    assert (Path(first) / "buergerchat_scan.py").is_file()
    assert str(REPO) not in module_path().split(":")
