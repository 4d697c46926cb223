"""Retention and privacy settings as an admin writes them, and what they make
of Synapse's config and log: every mistake named with file and key; the
rendered homeserver.yaml minimises data; request lines lose file names."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.config import load_config
from bridge.homeserver import TEMPLATES, render
from bridge.yamlconf import ConfigError
from tests.unit.test_config import SECRETS, config_copy

sys.path.insert(0, str(TEMPLATES / "modules"))
from buergerchat_logfilter import PersonalDataFilter, scrub  # noqa: E402


def test_defaults_keep_cases_90_days_and_transcripts_like_cases(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    cases = config.retention.cases
    assert (cases.chats_days, cases.offline_unanswered_days, cases.files_days) == (
        90,
        90,
        90,
    )
    assert config.retention.transcripts_days == 90
    assert config.retention.mail_bodies_days == 7
    assert config.privacy_url == "http://127.0.0.1:8080/privacy"


def test_keep_transcripts_and_the_town_s_own_notice(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["retention"] = {"transcripts_days": "keep", "chats_days": 30}
        data["citizen"]["privacy_url"] = "https://www.musterstadt.de/datenschutz"

    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    assert config.retention.transcripts_days is None
    assert config.retention.cases.chats_days == 30
    assert config.privacy_url == "https://www.musterstadt.de/datenschutz"


@pytest.mark.parametrize(
    ("retention", "path", "words"),
    [
        ({"chats_days": -1}, "retention.chats_days", "0 to 36500"),
        ({"transcripts_days": "forever"}, "retention.transcripts_days", "keep"),
        ({"chat_days": 3}, "retention.chat_days", "did you mean 'chats_days'"),
    ],
)
def test_mistakes_are_named(
    tmp_path: Path, retention: dict[str, Any], path: str, words: str
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["retention"] = retention

    with pytest.raises(ConfigError) as caught:
        load_config(config_copy(tmp_path, change), tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path == path and words in problem.message


def test_a_department_sets_its_own_periods(tmp_path: Path) -> None:
    folder = config_copy(tmp_path)
    rules = folder / "departments.yaml"
    data = yaml.safe_load(rules.read_text(encoding="utf-8"))
    data["departments"][0]["retention"] = {"chats_days": 14, "files_days": 7}
    data["departments"][1]["retention"] = {"chat_days": 1}
    rules.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(folder, tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path.endswith("retention.chat_days")
    del data["departments"][1]["retention"]
    rules.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(folder, tmp_path / "data")
    first = config.departments[0].id
    own = config.case_retention(first)
    assert (own.chats_days, own.files_days, own.offline_answered_days) == (14, 7, 90)


def test_synapse_is_rendered_to_keep_little(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["retention"] = {"chats_days": 200, "user_ips_days": 3}

    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    path = render(config, SECRETS)
    homeserver = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert homeserver["redaction_retention_period"] == "1d"
    assert homeserver["user_ips_max_age"] == "3d"
    assert homeserver["media_retention"]["local_media_lifetime"] == "230d"
    assert homeserver["enable_search"] is False
    assert homeserver["url_preview_enabled"] is False
    modules = [m["module"] for m in homeserver["modules"]]
    assert "buergerchat_privacy.BuergerchatPrivacy" in modules
    log = yaml.safe_load((path.parent / "log.yaml").read_text(encoding="utf-8"))
    assert "personal" in log["handlers"]["file"]["filters"]


def test_request_lines_lose_file_names_and_queries() -> None:
    line = (
        "127.0.0.1 - 8008 - {@bc_x:s} Processed request: 0.010sec 200 "
        '"POST /_matrix/media/v3/upload?filename=Antrag-Erika.pdf HTTP/1.1" '
        '"GET /_matrix/client/v1/media/download/s/AbC/Antrag-Erika.pdf HTTP/1.1"'
    )
    cleaned = scrub(line)
    assert "Erika" not in cleaned
    assert "/_matrix/media/v3/upload?…" in cleaned
    assert "/download/s/AbC/…" in cleaned
    record = logging.LogRecord("synapse.access", 20, "x", 1, "%s", (line,), None)
    assert PersonalDataFilter().filter(record)
    assert "Erika" not in record.getMessage()
