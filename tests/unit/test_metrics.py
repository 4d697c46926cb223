"""Who may read /metrics, and its settings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config
from bridge.metrics import LOOPBACK, _allowed
from tests.unit.test_config import config_copy


def test_only_the_allowed_networks_read_metrics() -> None:
    assert _allowed("127.0.0.1", LOOPBACK) and _allowed("::1", LOOPBACK)
    assert not _allowed("203.0.113.9", LOOPBACK)
    assert not _allowed("", LOOPBACK) and not _allowed("unix", LOOPBACK)
    monitoring = (ipaddress.ip_network("10.1.0.0/16"),)
    assert _allowed("10.1.2.3", monitoring) and not _allowed("127.0.0.1", monitoring)


def test_metrics_allow_is_read_and_checked(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    assert config.metrics_allow == LOOPBACK

    def change(data: dict) -> None:
        data["metrics"] = {"allow": ["10.1.0.0/16", "prometheus"]}

    with pytest.raises(ConfigError) as caught:
        load_config(config_copy(tmp_path / "b", change), tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path == "metrics.allow[1]" and "prometheus" in problem.message
