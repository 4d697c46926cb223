"""Federation with partner authorities (``federation:`` in buergerchat.yaml).

The town's homeserver is closed unless partners are named: then Synapse gets a
federation listener with TLS and ``federation_domain_whitelist`` lists exactly
the partners' server names, so no other server can join, invite or read. What
a partner takes hand-overs for is declared here (its department ids), so a
hand-over to anything else is refused before any data leaves the town.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .yamlconf import Section, check_port

#: Synapse's listener for other servers (the Matrix default port).
DEFAULT_PORT = 8448
#: A server name: a DNS name or an IP literal, optionally with a port.
SERVER_NAME = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
CHECK_TIMEOUT = aiohttp.ClientTimeout(total=10)
#: Synapse's default ip_range_blacklist (synapse.config.server).
SYNAPSE_BLOCKLIST = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
)
#: What ``allow_private_addresses`` opens: loopback and private networks.
PRIVATE_RANGES = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
)


@dataclass(frozen=True)
class Partner:
    #: What staff type: ``!transfer <id>:<department>``.
    id: str
    server_name: str
    #: What the citizen reads ("Landratsamt Musterkreis").
    name: str
    #: The partner's department ids it takes hand-overs for.
    departments: tuple[str, ...]
    #: The partner's Bürgerchat bot (invited into a case room to take it).
    bot: str = ""

    @property
    def bot_mxid(self) -> str:
        return self.bot or f"@buergerchat:{self.server_name}"


@dataclass(frozen=True)
class FederationSettings:
    partners: tuple[Partner, ...] = ()
    port: int = DEFAULT_PORT
    bind_address: str = "0.0.0.0"
    #: None: a self-signed certificate in the data folder (partners must then
    #: not verify certificates: for tests on one machine only).
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    verify_certificates: bool = True
    #: Partners on loopback or private addresses (Synapse refuses to reach
    #: them by default): tests on one machine, a partner inside one network.
    allow_private_addresses: bool = False
    #: After a hand-over the town's staff ``leave`` the room, or stay
    #: ``read_only`` (they read on, cannot write).
    after_handover: str = "leave"

    @property
    def open(self) -> bool:
        return bool(self.partners)

    def partner(self, key: str) -> Partner | None:
        """A partner by its id or its server name."""
        return next((p for p in self.partners if key in (p.id, p.server_name)), None)

    def of_user(self, mxid: str) -> Partner | None:
        """The partner whose server a Matrix user belongs to (by server name
        only: a partner's id is no server)."""
        if not mxid.startswith("@"):
            return None
        server = mxid.partition(":")[2]
        return next((p for p in self.partners if p.server_name == server), None)

    def staff_label(self, name: str, mxid: str) -> str:
        """A partner's staff member as the citizen reads them: "Anna Schmidt
        (Landratsamt Musterkreis)"; anyone else by ``name`` alone."""
        partner = self.of_user(mxid)
        return f"{name} ({partner.name})" if partner is not None else name

    def is_partner_bot(self, mxid: str) -> bool:
        partner = self.of_user(mxid)
        return partner is not None and partner.bot_mxid == mxid


def _server_name(value: str) -> str | None:
    if not SERVER_NAME.match(value):
        return "must be a Matrix server name like kreis.example or kreis.example:8448"
    return None


def read_federation(
    section: Section, own_server_name: str, config_dir: Path
) -> FederationSettings:
    """``federation:``; no partners (the default): the homeserver stays closed."""
    partners: list[Partner] = []
    for item in section.items("partners"):
        if not item.is_mapping():
            item.error("must be a mapping with id, server_name, name, departments")
            continue
        partner = _read_partner(item.section(), own_server_name)
        if partner is None:
            continue
        if any(p.id == partner.id for p in partners):
            item.error(f"the id '{partner.id}' is used by another partner")
        elif any(p.server_name == partner.server_name for p in partners):
            item.error(f"'{partner.server_name}' is named twice")
        else:
            partners.append(partner)
    cert = section.get("tls_certificate", str, None)
    key = section.get("tls_private_key", str, None)
    paths = [(config_dir / p) if p else None for p in (cert, key)]
    if (cert is None) != (key is None):
        section.error("set both tls_certificate and tls_private_key, or neither")
    for name, path in zip(("tls_certificate", "tls_private_key"), paths, strict=True):
        if path is not None and not path.is_file():
            section.error(f"file not found: {path}", name)
    settings = FederationSettings(
        partners=tuple(partners),
        port=section.get("port", int, DEFAULT_PORT, check=check_port),
        bind_address=section.get("bind_address", str, "0.0.0.0"),
        tls_certificate=paths[0],
        tls_private_key=paths[1],
        verify_certificates=section.get("verify_certificates", bool, True),
        allow_private_addresses=section.get("allow_private_addresses", bool, False),
        after_handover=section.get(
            "after_handover",
            str,
            "leave",
            check=lambda v: (
                None
                if v in ("leave", "read_only")
                else "must be 'leave' or 'read_only'"
            ),
        ),
    )
    section.finish()
    return settings


def _read_partner(s: Section, own_server_name: str) -> Partner | None:
    server_name = s.get("server_name", str, check=_server_name)
    if server_name == own_server_name:
        s.error("is this town's own server name", "server_name")
        server_name = None
    partner_id = s.get(
        "id",
        str,
        check=lambda v: (
            None
            if PARTNER_ID.match(v)
            else "must be lower-case letters, digits, '-' or '_' (what staff type)"
        ),
    )
    name = s.get("name", str)
    bot = s.get("bot", str, "")
    if bot and server_name and not bot.endswith(f":{server_name}"):
        s.error("must be a user of the partner's server", "bot")
    departments = [str(i.value) for i in s.items("departments", required=True)]
    if not departments and s.has("departments"):
        s.error("name at least one department the partner takes", "departments")
    s.finish()
    if not (server_name and partner_id and name and departments):
        return None
    return Partner(partner_id, server_name, name, tuple(departments), bot)


# --- Synapse ----------------------------------------------------------------------


def synapse_values(settings: FederationSettings, synapse_dir: Path) -> dict[str, str]:
    """The template's ``$federation_listener`` and ``$federation`` blocks."""
    if not settings.open:
        return {
            "federation_listener": "",
            "federation": "# No partners (federation: in buergerchat.yaml): closed.\n"
            "federation_domain_whitelist: []",
        }
    cert, key = settings.tls_certificate, settings.tls_private_key
    if cert is None or key is None:
        cert, key = self_signed(synapse_dir, settings)
    listener = yaml.safe_dump(
        [
            {
                "port": settings.port,
                "bind_addresses": [settings.bind_address],
                "type": "http",
                "tls": True,
                "resources": [{"names": ["federation"], "compress": False}],
            }
        ],
        sort_keys=False,
    )
    block: dict[str, Any] = {
        "federation_domain_whitelist": [p.server_name for p in settings.partners],
        "federation_verify_certificates": settings.verify_certificates,
        "tls_certificate_path": str(cert),
        "tls_private_key_path": str(key),
        # Every hand-over invites our bot over federation: Synapse's default
        # for invites one user receives (5, then one per 5 minutes) would
        # refuse the sixth hand-over of an hour from all partners together.
        "rc_invites": {"per_user": {"per_second": 1, "burst_count": 100}},
        # A few partners, each of which matters: after an outage of one of
        # them, try it again within minutes (Synapse: 10 minutes, doubling up
        # to 7 days), so hand-overs and answers do not wait for hours.
        "federation": {
            "destination_min_retry_interval": "30s",
            "destination_max_retry_interval": "10m",
        },
    }
    if settings.allow_private_addresses:
        # Synapse checks a server name that is an IP literal against the
        # blocklist alone (BlocklistingAgentWrapper), so the private ranges
        # leave the federation blocklist rather than join an allow-list.
        block["federation_ip_range_blacklist"] = [
            r for r in SYNAPSE_BLOCKLIST if r not in PRIVATE_RANGES
        ]
        block["ip_range_whitelist"] = list(PRIVATE_RANGES)
    return {
        "federation_listener": "\n".join("  " + line for line in listener.splitlines()),
        "federation": "# Partner authorities only (federation: in buergerchat.yaml).\n"
        + yaml.safe_dump(block, sort_keys=False).rstrip(),
    }


def self_signed(synapse_dir: Path, settings: FederationSettings) -> tuple[Path, Path]:
    """A self-signed certificate for the federation listener, made once."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path = synapse_dir / "federation.crt"
    key_path = synapse_dir / "federation.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "buergerchat")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o600)
    return cert_path, key_path


# --- check-config -----------------------------------------------------------------


def federation_base(server_name: str, delegated: str | None = None) -> str:
    """Where a server name's federation API is (``m.server`` from its
    well-known file, if any; else port 8448 unless the name has a port)."""
    target = delegated or server_name
    if target.startswith("["):  # an IPv6 literal
        host, _, rest = target.partition("]")
        host, port = host + "]", rest.removeprefix(":")
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, ""
    return f"https://{host}:{port or DEFAULT_PORT}"


async def unreachable_partners(settings: FederationSettings) -> list[str]:
    """One line per partner whose server does not answer on its federation
    API (check-config names them; `run` does not wait for them)."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context() if settings.verify_certificates else False
    )
    async with aiohttp.ClientSession(timeout=CHECK_TIMEOUT) as http:
        answers = await asyncio.gather(
            *(_reach(http, p, verify) for p in settings.partners)
        )
    return [a for a in answers if a]


async def _reach(
    http: aiohttp.ClientSession, partner: Partner, verify: ssl.SSLContext | bool
) -> str | None:
    delegated = None
    if ":" not in partner.server_name:
        try:
            async with http.get(
                f"https://{partner.server_name}/.well-known/matrix/server", ssl=verify
            ) as r:
                if r.status == 200:
                    delegated = str(json.loads(await r.text()).get("m.server") or "")
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
            delegated = None
    base = federation_base(partner.server_name, delegated or None)
    try:
        async with http.get(f"{base}/_matrix/federation/v1/version", ssl=verify) as r:
            if r.status == 200:
                return None
            why = f"answers {r.status}"
    except (aiohttp.ClientError, TimeoutError) as e:
        why = str(e) or type(e).__name__
    return (
        f"federation partner '{partner.id}' ({partner.name}, {partner.server_name}) "
        f"is not reachable at {base}: {why}"
    )
