"""The bridge's configuration: ``buergerchat.yaml`` and ``departments.yaml``.

Every setting has its one default here. Loading collects all problems (file, line,
key) and raises :class:`ConfigError` listing them; nothing half-read is ever used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .accessibility.settings import (
    AccessibilitySettings,
    feedback_address,
    read_accessibility,
)
from .departments.model import Department, RoutingRules, Staff
from .departments.rules import read_rules
from .federation import FederationSettings, read_federation
from .limits import LimitSettings, read_limits
from .mail.settings import MailSettings, load_mail_settings
from .metrics import LOOPBACK, read_metrics
from .plugins import read_plugin_sections
from .privacy.settings import (
    CaseRetention,
    PrivacyNotice,
    Retention,
    read_privacy,
    read_retention,
)
from .yamlconf import ConfigError, Problems, Section, check_http_url, check_port

__all__ = ["Config", "ConfigError", "Department", "Staff", "load_config", "paths"]

MAIN_FILE = "buergerchat.yaml"
DEPARTMENTS_FILE = "departments.yaml"


@dataclass(frozen=True)
class Town:
    name: str
    website: str | None
    logo: Path | None


@dataclass(frozen=True)
class SynapseWorkers:
    """Synapse split into processes (bridge.synapse_workers)."""

    #: Generic workers for client and sync traffic (the first also pushes
    #: events to the bridge: notify_appservices_from_worker).
    client_workers: int
    redis_host: str
    redis_port: int
    #: The processes listen on 127.0.0.1 from this port on.
    first_port: int


@dataclass(frozen=True)
class Homeserver:
    server_name: str
    url: str
    embedded: bool
    port: int
    bind_address: str
    database: str
    max_upload_size_mb: int
    #: A file holding a Synapse admin's access token (external homeserver).
    admin_token_file: str | None = None
    #: None: one Synapse process.
    workers: SynapseWorkers | None = None


@dataclass(frozen=True)
class BridgeSettings:
    host: str
    port: int
    public_url: str
    appservice_url: str
    database: str
    bot_localpart: str
    bot_displayname: str
    ghost_prefix: str
    allowed_origins: tuple[str, ...]


@dataclass(frozen=True)
class Citizen:
    token_ttl_hours: int
    max_message_length: int
    reference_prefix: str
    long_poll_max_seconds: int
    privacy_url: str | None
    #: The page with the widget that links in e-mails open (``#bc-resume=…``).
    resume_page_url: str
    resume_link_ttl_days: int


@dataclass
class Config:
    """Read once at start; only the routing rules (``departments.yaml``) are swapped
    while running, by :meth:`replace_rules`, so every holder sees the new rules.

    The bots' own sections (``scanner``, ``video``, ``transcripts``, …) are read
    by the bots' classes (:func:`bridge.plugins.read_plugin_sections`) and kept in
    ``plugins``, by section name."""

    config_dir: Path
    data_dir: Path
    town: Town
    homeserver: Homeserver
    bridge: BridgeSettings
    citizen: Citizen
    demo_staff_accounts: bool
    mail: MailSettings
    limits: LimitSettings
    departments: tuple[Department, ...]
    routing: RoutingRules
    retention: Retention = field(default_factory=Retention)
    privacy: PrivacyNotice | None = None
    #: Who may read /metrics (``metrics.allow``; loopback by default).
    metrics_allow: tuple[Any, ...] = LOOPBACK
    accessibility: AccessibilitySettings = field(
        default_factory=lambda: read_accessibility(Section("", None, "", Problems()))
    )
    plugins: dict[str, Any] = field(default_factory=dict)
    #: Partner authorities (bridge.federation); none: the homeserver is closed.
    federation: FederationSettings = field(default_factory=FederationSettings)

    def plugin(self, section: str) -> Any:
        """A bot's settings, by the name of its section in buergerchat.yaml."""
        try:
            return self.plugins[section]
        except KeyError:
            raise LookupError(
                f"no bot reads the section {section!r}: is its package installed?"
            ) from None

    def replace_rules(self, rules: RoutingRules) -> None:
        self.routing = rules
        self.departments = rules.departments

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)

    @property
    def bot_mxid(self) -> str:
        return f"@{self.bridge.bot_localpart}:{self.homeserver.server_name}"

    def case_retention(self, department_id: str) -> CaseRetention:
        """The periods of one department: its own ``retention:`` over the
        defaults of buergerchat.yaml (a department gone from the rules: the
        defaults)."""
        department = self.department(department_id)
        own = dict(department.retention) if department else {}
        return replace(self.retention.cases, **own)

    @property
    def privacy_url(self) -> str:
        """Where the widget links at consent: the town's own page, else the
        Art. 13 notice the bridge renders (``/privacy``)."""
        return self.citizen.privacy_url or f"{self.bridge.public_url}/privacy"

    @property
    def accessibility_links(self) -> dict[str, str | None]:
        """What the widget's start page links (BITV 2.0): the accessibility
        statement and the Leichte Sprache page (the town's own or the bridge's)
        and the town's DGS videos, if it has them."""
        a, base = self.accessibility, self.bridge.public_url
        return {
            "accessibility_url": a.statement_url or f"{base}/accessibility",
            "easy_language_url": a.easy_language_url or f"{base}/leichte-sprache",
            "sign_language_url": a.sign_language_url,
        }

    def all_staff(self) -> dict[str, Staff]:
        return {s.mxid: s for d in self.departments for s in d.staff}


def paths() -> tuple[Path, Path]:
    """The config and data folders, from the environment or beside the checkout."""
    config_dir = Path(os.environ.get("BUERGERCHAT_CONFIG_DIR", "config"))
    data_dir = Path(os.environ.get("BUERGERCHAT_DATA_DIR", "data"))
    return config_dir.resolve(), data_dir.resolve()


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


_http_url = check_http_url
_port = check_port


def _database(value: str) -> str | None:
    if "CHANGE_ME" in value:
        return "still has the placeholder CHANGE_ME: put the real password in"
    if value == "sqlite" or value.startswith(("postgresql://", "postgres://")):
        return None
    return "must be 'sqlite' or a URL like postgresql://user@host/dbname"


def _load_main(section: Section, config_dir: Path, data_dir: Path) -> dict:
    """The core's sections of ``buergerchat.yaml`` (the bots read theirs after)."""
    town = _read_town(section.section("town", required=True), config_dir)
    homeserver = _read_homeserver(section.section("homeserver", required=True))
    bridge = _read_bridge(section.section("bridge"))
    citizen = _read_citizen(section.section("citizen"), bridge.public_url)
    mail = load_mail_settings(section.section("mail"), data_dir, config_dir)
    limits = read_limits(section.section("limits"))
    demo_staff = _read_demo_staff_accounts(section.section("demo"))
    retention = read_retention(section.section("retention"))
    privacy = read_privacy(section.section("privacy"), town.name)
    accessibility = read_accessibility(section.section("accessibility"), config_dir)
    metrics_allow = read_metrics(section.section("metrics"))
    federation = read_federation(
        section.section("federation"), homeserver.server_name, config_dir
    )
    return dict(
        town=town,
        homeserver=homeserver,
        bridge=bridge,
        citizen=citizen,
        demo_staff_accounts=demo_staff,
        mail=mail,
        limits=limits,
        retention=retention,
        privacy=privacy,
        accessibility=accessibility,
        metrics_allow=metrics_allow,
        federation=federation,
    )


def _read_town(town: Section, config_dir: Path) -> Town:
    logo = town.get("logo", str, None)
    town_cfg = Town(
        name=town.get("name", str),
        website=town.get("website", str, None, check=_http_url),
        logo=(config_dir / logo) if logo else None,
    )
    if town_cfg.logo is not None and not town_cfg.logo.is_file():
        town.error(f"logo file {town_cfg.logo} does not exist", "logo")
    town.finish()
    return town_cfg


def _read_homeserver(hs: Section) -> Homeserver:
    homeserver = Homeserver(
        server_name=hs.get("server_name", str),
        url=hs.get("url", str, "http://127.0.0.1:8008", check=_http_url),
        embedded=hs.get("embedded", bool, True),
        port=hs.get("port", int, 8008, check=_port),
        bind_address=hs.get("bind_address", str, "127.0.0.1"),
        database=hs.get("database", str, "sqlite", check=_database),
        max_upload_size_mb=hs.get("max_upload_size_mb", int, 20, check=_positive),
        admin_token_file=hs.get("admin_token_file", str, None),
    )
    workers = _read_workers(hs.section("workers"), homeserver)
    hs.finish()
    return replace(homeserver, workers=workers)


def _read_workers(section: Section, hs: Homeserver) -> SynapseWorkers | None:
    enabled = section.get("enabled", bool, False)
    redis = section.get("redis", str, "127.0.0.1:6379")
    host, _, port = redis.rpartition(":")
    workers = SynapseWorkers(
        client_workers=section.get("client_workers", int, 1, check=_positive),
        redis_host=host or "127.0.0.1",
        redis_port=int(port) if port.isdigit() else 6379,
        first_port=section.get("first_port", int, 0, check=lambda v: v and _port(v))
        or hs.port + 100,
    )
    if not port.isdigit():
        section.error("must be host:port, e.g. 127.0.0.1:6379", "redis")
    if enabled and hs.database == "sqlite":
        section.error(
            "Synapse workers need PostgreSQL: set homeserver.database to "
            "postgresql://user@host/dbname",
            "enabled",
        )
    section.finish()
    return workers if enabled else None


def _read_bridge(br: Section) -> BridgeSettings:
    bridge = BridgeSettings(
        host=br.get("host", str, "127.0.0.1"),
        port=br.get("port", int, 8080, check=_port),
        public_url=br.get(
            "public_url", str, "", check=lambda v: v and _http_url(v)
        ).rstrip("/"),
        appservice_url=br.get(
            "appservice_url", str, "", check=lambda v: v and _http_url(v)
        ),
        database=br.get("database", str, "sqlite", check=_database),
        bot_localpart=br.get("bot_localpart", str, "buergerchat"),
        bot_displayname=br.get("bot_displayname", str, "Bürgerchat"),
        ghost_prefix=br.get("ghost_prefix", str, "bc_"),
        allowed_origins=tuple(br.get("allowed_origins", list, ["*"])),
    )
    br.finish()
    return _with_default_urls(bridge)


def _with_default_urls(bridge: BridgeSettings) -> BridgeSettings:
    """Public and appservice URL, when not set, from the address the bridge
    listens on (a wildcard address is reached on 127.0.0.1)."""
    if not bridge.public_url:
        bridge = replace(bridge, public_url=f"http://{bridge.host}:{bridge.port}")
    if not bridge.appservice_url:
        host = "127.0.0.1" if bridge.host in ("0.0.0.0", "::", "") else bridge.host
        bridge = replace(bridge, appservice_url=f"http://{host}:{bridge.port}")
    return bridge


def _read_citizen(ci: Section, public_url: str) -> Citizen:
    citizen = Citizen(
        token_ttl_hours=ci.get("token_ttl_hours", int, 72, check=_positive),
        max_message_length=ci.get("max_message_length", int, 4000, check=_positive),
        reference_prefix=ci.get("reference_prefix", str, "BC"),
        long_poll_max_seconds=ci.get("long_poll_max_seconds", int, 30, check=_positive),
        privacy_url=ci.get("privacy_url", str, None, check=_http_url),
        resume_page_url=ci.get(
            "resume_page_url", str, "", check=lambda v: v and _http_url(v)
        ).rstrip("/"),
        resume_link_ttl_days=ci.get("resume_link_ttl_days", int, 14, check=_positive),
    )
    if not citizen.resume_page_url:
        citizen = replace(citizen, resume_page_url=f"{public_url}/demo")
    ci.finish()
    return citizen


def _read_demo_staff_accounts(demo: Section) -> bool:
    create: bool = demo.get("create_staff_accounts", bool, False)
    demo.finish()
    return create


def load_config(config_dir: Path | None = None, data_dir: Path | None = None) -> Config:
    """Read and check the whole configuration, or raise ConfigError naming each
    problem with file, line and key."""
    default_config, default_data = paths()
    config_dir = config_dir or default_config
    data_dir = data_dir or default_data
    problems = Problems()
    if not config_dir.is_dir():
        problems.add(
            str(config_dir),
            0,
            "",
            "config folder not found; set "
            "BUERGERCHAT_CONFIG_DIR or copy the example folder config/",
        )
        problems.raise_if_any()
    main_file = Section.load(config_dir / MAIN_FILE, problems)
    main = _load_main(main_file, config_dir, data_dir)
    rules = read_rules(Section.load(config_dir / DEPARTMENTS_FILE, problems))
    config = Config(
        config_dir=config_dir,
        data_dir=data_dir,
        departments=rules.departments,
        routing=rules,
        **main,
    )
    config.plugins = read_plugin_sections(main_file, config)
    if feedback_address(config.accessibility, rules) is None:
        main_file.section("accessibility").error(
            "no address for accessibility feedback (BITV 2.0 asks for a feedback "
            "channel): set accessibility.feedback_email, or an inbox: for the "
            "default department in departments.yaml"
        )
    main_file.finish()
    problems.raise_if_any()
    return config
