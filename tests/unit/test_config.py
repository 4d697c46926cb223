"""The main config file: cross-section checks and the settings the lead wired
(mail, transcripts, resume links)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bridge.config import load_config
from bridge.homeserver import Secrets
from bridge.yamlconf import ConfigError

REPO = Path(__file__).resolve().parents[2]
#: Placeholder secrets for rendering Synapse's configuration in tests.
SECRETS = Secrets(
    dict.fromkeys(
        (
            "as_token",
            "hs_token",
            "registration_shared_secret",
            "macaroon_secret_key",
            "form_secret",
        ),
        "x",
    )
)


def config_copy(tmp_path: Path, change: object = None) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    path = folder / "buergerchat.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if change is not None:
        change(data)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


def test_defaults_of_the_example(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    assert config.mail.backend == "maildir"
    assert config.mail.maildir == tmp_path / "data" / "mail"
    assert config.plugin("transcripts").archive_dir == tmp_path / "data" / "transcripts"
    assert config.citizen.resume_page_url == "http://127.0.0.1:8080/demo"
    assert config.citizen.resume_link_ttl_days == 14


def test_absolute_archive_dir_and_resume_page(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["transcripts"] = {"archive_dir": str(tmp_path / "akten")}
        data["citizen"]["resume_page_url"] = "https://www.musterstadt.de/chat/"

    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    assert config.plugin("transcripts").archive_dir == tmp_path / "akten"
    assert config.citizen.resume_page_url == "https://www.musterstadt.de/chat"


def test_external_homeserver_needs_an_admin_token_file(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["homeserver"]["embedded"] = False

    with pytest.raises(ConfigError) as caught:
        load_config(config_copy(tmp_path, change), tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path == "scanner.admin_token_file"
    assert "homeserver.embedded is false" in problem.message


def test_unknown_key_in_transcripts_is_named(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["transcripts"] = {"archiv_dir": "x"}

    with pytest.raises(ConfigError) as caught:
        load_config(config_copy(tmp_path, change), tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path == "transcripts.archiv_dir"
    assert "did you mean 'archive_dir'" in problem.message
