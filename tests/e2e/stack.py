"""Start the real product (`buergerchat run`: Synapse + bridge + bots) for tests,
on free ports, in a temporary config and data folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bridge.limits import DEFAULT_RULES

REPO = Path(__file__).resolve().parents[2]
PINNED_NOW = "2026-11-19T10:00:00+01:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    config_dir: Path
    data_dir: Path
    bridge_port: int
    homeserver_port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Office hours are judged at a Thursday 10:00 in Berlin, when every example
    # department is live, so the tests do not depend on the day they run.
    extra_env: dict[str, str] = field(
        default_factory=lambda: {"BUERGERCHAT_NOW": PINNED_NOW}
    )

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @property
    def homeserver_url(self) -> str:
        return f"http://127.0.0.1:{self.homeserver_port}"

    @property
    def server_name(self) -> str:
        return "buergerchat.localhost"

    def staff_password(self, mxid: str) -> str:
        passwords = yaml.safe_load((self.data_dir / "demo-staff.yaml").read_text())
        return str(passwords[mxid])

    def edit_config(self, name: str, change: Any) -> None:
        path = self.config_dir / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    def start(self, timeout: float = 180) -> None:
        assert self.process is None
        self.log_path = self.data_dir.parent / f"run-{int(time.time() * 1000)}.log"
        log = self.log_path.open("wb")
        env = {
            **os.environ,
            "BUERGERCHAT_CONFIG_DIR": str(self.config_dir),
            "BUERGERCHAT_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"buergerchat run exited:\n{self.log()}")
            if "Bürgerchat is running." in self.log():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"buergerchat run did not come up:\n{self.log()}")

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(2)  # Ctrl-C, as a person would
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code


def shared_rules(data: dict[str, Any]) -> None:
    """Routing for stacks that many tests share: presence is not judged (test
    clients do not keep syncing, so Synapse would soon call them offline) and
    nobody's case limit is reached, so every new case goes live at once."""
    data.setdefault("routing", {})["use_presence"] = False
    for department in data["departments"]:
        department["max_cases_per_staff"] = 1000


def unlimited_rules(data: dict[str, Any]) -> None:
    """Routing for the benches: presence not judged and no case limit anyone
    reaches, however many cases a bench opens."""
    data.setdefault("routing", {})["use_presence"] = False
    for department in data["departments"]:
        department["max_cases_per_staff"] = 1_000_000


#: Limits no functional test meets: all its chats come from 127.0.0.1, and the
#: soaks send thousands of messages into a few cases. tests/e2e/test_abuse.py
#: runs with the real defaults (``limits=None``).
LOOSE_LIMITS: dict[str, Any] = {
    **{name: "100000/minute" for name in DEFAULT_RULES},
    "polls_per_token": 1000,
    "polls_per_address": 100000,
    # every e2e chat comes from 127.0.0.1: without this the fourth chat of a
    # module would be summarised as a burst instead of announced on its own
    "burst_chats": 100000,
}


def make_stack(
    base: Path,
    edit_rules: Callable[[dict[str, Any]], None] | None = shared_rules,
    limits: dict[str, Any] | None = LOOSE_LIMITS,
    **overrides: Any,
) -> Stack:
    """A config folder copied from config/ with free ports, and an empty data folder.
    ``edit_rules`` changes the parsed departments.yaml (default: shared_rules);
    ``limits`` the abuse limits (default: loose; None: the product's defaults)."""
    config_dir = base / "config"
    data_dir = base / "data"
    shutil.copytree(REPO / "config", config_dir)
    data_dir.mkdir(parents=True)
    stack = Stack(config_dir, data_dir, free_port(), free_port())

    def ports(data: dict[str, Any]) -> None:
        data["homeserver"]["port"] = stack.homeserver_port
        data["homeserver"]["url"] = stack.homeserver_url
        data["bridge"]["port"] = stack.bridge_port
        data["bridge"]["public_url"] = stack.bridge_url
        if limits is not None:
            data.setdefault("limits", {}).update(limits)
        for section, values in overrides.items():
            data.setdefault(section, {}).update(values)

    stack.edit_config("buergerchat.yaml", ports)
    if edit_rules is not None:
        stack.edit_config("departments.yaml", edit_rules)
    return stack
