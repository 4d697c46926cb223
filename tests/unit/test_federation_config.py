"""``federation:``: partners in the config, rendered into Synapse's allow-list
and a TLS listener; closed without partners; check-config names a partner
whose server does not answer."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.cli import main
from bridge.config import load_config
from bridge.federation import SYNAPSE_BLOCKLIST, federation_base
from bridge.homeserver import render
from bridge.yamlconf import ConfigError

from .test_config import SECRETS, config_copy

COUNTY = {
    "id": "landkreis",
    "server_name": "landkreis.example",
    "name": "Landratsamt Musterkreis",
    "departments": ["kfz", "bauamt"],
}


def with_federation(**federation: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["federation"] = federation

    return change


def rendered(tmp_path: Path, change: Any = None) -> dict[str, Any]:
    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    return dict(yaml.safe_load(render(config, SECRETS).read_text(encoding="utf-8")))


def test_without_partners_the_homeserver_is_closed(tmp_path: Path) -> None:
    homeserver = rendered(tmp_path)
    assert homeserver["federation_domain_whitelist"] == []
    assert [r["names"] for r in homeserver["listeners"][0]["resources"]] == [["client"]]
    assert len(homeserver["listeners"]) == 1
    assert "tls_certificate_path" not in homeserver
    assert not (tmp_path / "data" / "synapse" / "federation.key").exists()


def test_partners_open_exactly_them_over_tls(tmp_path: Path) -> None:
    neighbour = {**COUNTY, "id": "nachbar", "server_name": "10.1.2.3:8449"}
    homeserver = rendered(
        tmp_path, with_federation(partners=[COUNTY, neighbour], port=8500)
    )
    assert homeserver["federation_domain_whitelist"] == [
        "landkreis.example",
        "10.1.2.3:8449",
    ]
    assert homeserver["federation_verify_certificates"] is True
    assert "ip_range_whitelist" not in homeserver  # private addresses stay barred
    listener = next(x for x in homeserver["listeners"] if x["port"] == 8500)
    assert listener["tls"] is True
    assert listener["resources"] == [{"names": ["federation"], "compress": False}]
    # No certificate named: a self-signed one, private like the signing key.
    key = Path(homeserver["tls_private_key_path"])
    cert = Path(homeserver["tls_certificate_path"])
    assert key.parent == cert.parent == tmp_path / "data" / "synapse"
    assert b"BEGIN CERTIFICATE" in cert.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = rendered(tmp_path / "again", with_federation(partners=[COUNTY]))
    assert again["federation_domain_whitelist"] == ["landkreis.example"]
    # Each hand-over invites our bot: many an hour must not be refused (the
    # e2e test's seventh hand-over met Synapse's default of 5), and a partner
    # back from an outage is tried again within minutes.
    assert homeserver["rc_invites"]["per_user"]["burst_count"] >= 100
    assert homeserver["federation"]["destination_max_retry_interval"] == "10m"


def test_without_partners_synapses_invite_limits_stay(tmp_path: Path) -> None:
    homeserver = rendered(tmp_path)
    assert "rc_invites" not in homeserver and "federation" not in homeserver


def test_tests_on_one_machine_allow_loopback_and_skip_verification(
    tmp_path: Path,
) -> None:
    homeserver = rendered(
        tmp_path,
        with_federation(
            partners=[COUNTY], verify_certificates=False, allow_private_addresses=True
        ),
    )
    assert homeserver["federation_verify_certificates"] is False
    assert "127.0.0.0/8" in homeserver["ip_range_whitelist"]
    barred = homeserver["federation_ip_range_blacklist"]
    assert "127.0.0.0/8" not in barred and "169.254.0.0/16" in barred


def test_the_blocklist_is_synapses() -> None:
    """What is kept of Synapse's default blocklist is Synapse's own list."""
    from synapse.config.server import DEFAULT_IP_RANGE_BLOCKLIST

    assert list(SYNAPSE_BLOCKLIST) == DEFAULT_IP_RANGE_BLOCKLIST


@pytest.mark.parametrize(
    ("partners", "extra", "expected"),
    [
        ([{**COUNTY, "server_name": "buergerchat.localhost"}], {}, "own server"),
        ([{**COUNTY, "server_name": "not a name"}], {}, "Matrix server name"),
        ([COUNTY, {**COUNTY, "server_name": "b.example"}], {}, "used by another"),
        ([COUNTY, {**COUNTY, "id": "zwei"}], {}, "named twice"),
        ([{**COUNTY, "departments": []}], {}, "at least one department"),
        ([{**COUNTY, "id": "Landkreis Nord"}], {}, "lower-case"),
        ([{k: v for k, v in COUNTY.items() if k != "name"}], {}, "missing"),
        ([COUNTY], {"tls_certificate": "cert.pem"}, "both"),
        ([COUNTY], {"port": 70000}, "TCP port"),
        ([COUNTY], {"partner": []}, "unknown key"),
    ],
)
def test_mistakes_are_named(
    tmp_path: Path, partners: list[Any], extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(
            config_copy(tmp_path, with_federation(partners=partners, **extra)),
            tmp_path / "data",
        )
    assert expected in "\n".join(str(p) for p in e.value.problems)


def test_check_config_names_a_partner_whose_server_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing answers there
    gone = {**COUNTY, "server_name": f"127.0.0.1:{port}"}
    folder = config_copy(tmp_path, with_federation(partners=[gone]))
    code = main(
        ["--config-dir", str(folder), "--data-dir", str(tmp_path / "d"), "check-config"]
    )
    out = capsys.readouterr().out
    assert code == 0  # valid; the partner may be down for now
    assert f"'landkreis' (Landratsamt Musterkreis, 127.0.0.1:{port})" in out
    assert f"https://127.0.0.1:{port}" in out


def test_where_a_partners_federation_api_is() -> None:
    assert federation_base("kreis.example") == "https://kreis.example:8448"
    assert federation_base("kreis.example:443") == "https://kreis.example:443"
    assert federation_base("kreis.example", "matrix.kreis.example:443") == (
        "https://matrix.kreis.example:443"
    )
    assert federation_base("[::1]:8449") == "https://[::1]:8449"
    assert federation_base("[::1]") == "https://[::1]:8448"


def test_the_privacy_notice_names_the_partners_escaped(tmp_path: Path) -> None:
    from bridge.privacy.notice import render_notice

    closed = load_config(config_copy(tmp_path / "a"), tmp_path / "a" / "data")
    assert "Partnerbehörde" not in render_notice(closed)
    odd = {**COUNTY, "name": "Kreis <b>Nord</b> & Co"}
    config = load_config(
        config_copy(tmp_path / "b", with_federation(partners=[odd])),
        tmp_path / "b" / "data",
    )
    page = render_notice(config)
    assert "Kreis &lt;b&gt;Nord&lt;/b&gt; &amp; Co" in page
    assert "<b>Nord" not in page
    assert "nur, wenn Sie im Chat zustimmen" in page
