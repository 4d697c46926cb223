"""Element for staff: the theme's config.json and what ``buergerchat
element-config`` writes follow what Element reads (element-theme/
config.schema.json, from Element's IConfigOptions and theme.ts); the written
config points at this installation's homeserver, never at the example's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bridge.element import THEME_DIR, element_config
from tests.harness import example_config

SCHEMA = json.loads((THEME_DIR / "config.schema.json").read_text(encoding="utf-8"))


def check(data: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(data)


def test_the_theme_follows_elements_schema() -> None:
    theme = json.loads((THEME_DIR / "config.json").read_text(encoding="utf-8"))
    check(theme)
    names = [t["name"] for t in theme["setting_defaults"]["custom_themes"]]
    assert theme["default_theme"] in {f"custom-{n}" for n in names}


def test_the_schema_catches_what_element_would_ignore_or_break_on() -> None:
    theme = json.loads((THEME_DIR / "config.json").read_text(encoding="utf-8"))
    typo = {**theme, "disable_custom_url": True}  # Element ignores it silently
    with pytest.raises(jsonschema.ValidationError):
        check(typo)
    short = json.loads(json.dumps(theme))
    short["setting_defaults"]["custom_themes"][0]["colors"]["accent-color"] = "#d50"
    with pytest.raises(jsonschema.ValidationError):  # Element appends alpha digits
        check(short)
    nowhere = {k: v for k, v in theme.items() if k != "default_server_config"}
    with pytest.raises(jsonschema.ValidationError):
        check(nowhere)


def test_element_config_points_at_this_homeserver(tmp_path: Path) -> None:
    config = example_config(
        tmp_path,
        lambda d: d["homeserver"].update(
            url="https://matrix.example-town.de", server_name="example-town.de"
        ),
    )
    data = element_config(config)
    check(data)
    assert data["default_server_config"]["m.homeserver"] == {
        "base_url": "https://matrix.example-town.de",
        "server_name": "example-town.de",
    }
    assert data["brand"] == f"Bürgerchat {config.town.name}"


def test_the_command_prints_and_writes_it(tmp_path: Path) -> None:
    out = tmp_path / "Element" / "config.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "--config-dir",
            str(THEME_DIR.parent / "config"),
            "--data-dir",
            str(tmp_path / "data"),
            "element-config",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    check(printed)
    assert printed["default_server_config"]["m.homeserver"]["base_url"] == (
        "http://127.0.0.1:8008"
    )
