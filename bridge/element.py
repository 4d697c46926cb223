"""Element for staff: the town's themed config.json (``element-theme/``),
pointed at this installation's homeserver.

Element Web is not published to the package registries this project installs
from (neither npm nor Debian carries it), so ``./run.sh`` serves no web client;
staff use Element Desktop (or the town's own Element Web), and
``buergerchat element-config`` writes the config.json they load: the theme and
the German defaults from ``element-theme/config.json``, the homeserver from
``buergerchat.yaml``. ``element-theme/config.schema.json`` describes what
Element reads (from its ``IConfigOptions``); tests check both files against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import Config

THEME_DIR = Path(__file__).resolve().parent.parent / "element-theme"


def element_config(config: Config, theme_dir: Path = THEME_DIR) -> dict[str, Any]:
    """``element-theme/config.json`` with this installation's homeserver."""
    data = json.loads((theme_dir / "config.json").read_text(encoding="utf-8"))
    data["default_server_config"] = {
        "m.homeserver": {
            "base_url": config.homeserver.url.rstrip("/"),
            "server_name": config.homeserver.server_name,
        }
    }
    data["brand"] = f"Bürgerchat {config.town.name}".strip()
    return data


def write_element_config(config: Config, out: Path | None) -> str:
    """The config as JSON text; written to ``out`` too, if given."""
    text = json.dumps(element_config(config), ensure_ascii=False, indent=2) + "\n"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return text
