"""Who may read /metrics, and its settings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config
from bridge.metrics import LOOPBACK, OUTCOMES, Metrics, _allowed
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


def test_outcomes_start_at_zero_and_refuse_unknown_names() -> None:
    """Every scan and mail outcome is shown from 0, so a dashboard's rate works
    before the first one; a misspelt outcome is a bug, not a new series."""
    from prometheus_client import generate_latest

    metrics = Metrics(None, None, None)  # type: ignore[arg-type]
    text = generate_latest(metrics.registry).decode()
    for part, outcomes in OUTCOMES.items():
        for outcome in outcomes:
            line = f'buergerchat_outcomes_total{{outcome="{outcome}",part="{part}"}}'
            assert line + " 0.0" in text, line
    metrics.count("scan", "infected")
    assert (
        'outcome="infected",part="scan"} 1.0'
        in generate_latest(metrics.registry).decode()
    )
    with pytest.raises(ValueError):
        metrics.count("scan", "virus")


def test_every_series_the_example_dashboard_plots_is_exported() -> None:
    """deploy/grafana's queries name only series /metrics has (a renamed metric
    would leave an empty panel nobody notices)."""
    import json
    import re

    from prometheus_client import generate_latest

    repo = Path(__file__).resolve().parents[2]
    dashboard = json.loads(
        (repo / "deploy/grafana/buergerchat-dashboard.json").read_text("utf-8")
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    plotted = {n for e in exprs for n in re.findall(r"buergerchat_\w+", e)}
    text = generate_latest(Metrics(None, None, None).registry).decode()  # type: ignore[arg-type]
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update(name + s for s in ("_bucket", "_count", "_sum"))
    assert plotted and plotted <= names, plotted - names
