"""The ``mail:`` section of ``buergerchat.yaml``, with every default in one place.

Example (every key optional unless noted)::

    mail:
      from:                       # Required with backend smtp
        address: buergerchat@hockenheim.de
        name: Bürgerchat Stadt Hockenheim
      backend: smtp               # maildir (default) | smtp
      maildir: mail               # Default: <data dir>/mail
      smtp:                       # Required with backend smtp
        host: smtp.hockenheim.de  # Required
        port: 587                 # Default: 587 starttls, 465 tls, 25 none
        security: starttls        # starttls (default) | tls | none
        username: buergerchat     # Optional; then password_file (or password)
        password_file: /run/secrets/smtp_password
        ca_file: /etc/ssl/town-ca.pem   # Optional; trust this CA instead
        timeout_seconds: 30       # Default: 30
      max_attempts: 8             # Default: 8, then the mail is parked
      backoff_seconds: 30         # Default: 30, doubled after every failure
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from bridge.yamlconf import Section, check_port

Backend = Literal["maildir", "smtp"]
Security = Literal["starttls", "tls", "none"]

DEFAULT_SENDER_ADDRESS = "buergerchat@localhost"
DEFAULT_SENDER_NAME = "Bürgerchat"
DEFAULT_MAILDIR = "mail"
DEFAULT_SECURITY: Security = "starttls"
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_SECONDS = 30.0

# Values copied from an example config instead of a real secret.
_PLACEHOLDERS = {
    "changeme",
    "change-me",
    "change_me",
    "password",
    "passwort",
    "secret",
    "geheim",
    "example",
    "xxx",
    "todo",
    "...",
}


@dataclass(frozen=True)
class Sender:
    """The ``From`` of every mail: an address and a display name."""

    address: str
    name: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def header(self) -> Address:
        return Address(display_name=self.name, addr_spec=self.address)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None = field(repr=False)
    timeout_seconds: float
    ca_file: Path | None = None


@dataclass(frozen=True)
class MailSettings:
    sender: Sender
    backend: Backend
    maildir: Path
    smtp: SmtpSettings | None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS


def check_address(value: str) -> str | None:
    """A problem with an e-mail address, or None when it is usable in a header."""
    if value.count("@") != 1 or any(c.isspace() for c in value):
        return f"'{value}' is not an e-mail address like buergerchat@example.org"
    local, _, domain = value.partition("@")
    if not local or not domain:
        return f"'{value}' is not an e-mail address like buergerchat@example.org"
    try:
        Address(addr_spec=value)
    except (HeaderParseError, ValueError, IndexError):
        return f"'{value}' is not an e-mail address like buergerchat@example.org"
    return None


def placeholder_problem(secret: str) -> str | None:
    """Refuse empty and example passwords, so a copied config cannot go live."""
    value = secret.strip()
    if not value:
        return "is empty"
    lowered = value.lower()
    if lowered in _PLACEHOLDERS or "changeme" in lowered or value.startswith("<"):
        return f"'{value}' is a placeholder from the example; put the real password"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(choices)}, not '{value}'"

    return check


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_sender(section: Section, required: bool) -> Sender:
    default = Sender(DEFAULT_SENDER_ADDRESS, DEFAULT_SENDER_NAME)
    if not section.has("from"):
        if required:
            section.error("required with backend smtp: address and name", "from")
        return default
    value = section.get("from", (str, dict))
    if isinstance(value, str):
        # Also accepted: from: "Bürgerchat Hockenheim <buergerchat@hockenheim.de>"
        name, address = parseaddr(value)
        problem = check_address(address) if address else f"'{value}' has no address"
        if problem:
            section.error(problem, "from")
            return default
        return Sender(address, name or DEFAULT_SENDER_NAME)
    if value is None:
        return default
    sub = section.section("from")
    address = sub.get("address", str, check=check_address)
    name = sub.get("name", str, DEFAULT_SENDER_NAME)
    if any(c in name for c in "\r\n"):
        sub.error("must be one line", "name")
    sub.finish()
    return Sender(address or DEFAULT_SENDER_ADDRESS, name)


def _resolve(value: str, base: Path | None) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _read_password(section: Section, config_dir: Path | None) -> str | None:
    inline = section.get("password", str, None)
    file_value = section.get("password_file", str, None)
    if inline is not None and file_value is not None:
        section.error("give either password or password_file, not both", "password")
        return None
    if file_value is not None:
        path = _resolve(file_value, config_dir)
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            section.error(f"cannot read the password file {path}: {e}", "password_file")
            return None
        problem = placeholder_problem(secret)
        if problem:
            section.error(f"the password in {path} {problem}", "password_file")
            return None
        return secret
    if inline is not None:
        problem = placeholder_problem(inline)
        if problem:
            section.error(f"the password {problem}", "password")
            return None
        return inline
    return None


def _load_smtp(section: Section, config_dir: Path | None) -> SmtpSettings:
    security: Security = section.get(
        "security",
        str,
        DEFAULT_SECURITY,
        check=_one_of("starttls", "tls", "none"),
    )
    host = section.get("host", str) or ""
    port = section.get("port", int, DEFAULT_PORTS[security], check=check_port)
    username = section.get("username", str, None)
    password = _read_password(section, config_dir)
    has_password = section.has("password") or section.has("password_file")
    if username is not None and not has_password:
        section.error("a username needs password_file (or password)", "username")
    if username is None and has_password:
        section.error("a password needs a username", "username")
    if username is not None and security == "none" and host and not _is_loopback(host):
        section.error(
            f"would send the password unencrypted to {host}; use starttls or tls",
            "security",
        )
    ca_value = section.get("ca_file", str, None)
    ca_file = _resolve(ca_value, config_dir) if ca_value else None
    if ca_file is not None and not ca_file.is_file():
        section.error(f"the CA file {ca_file} does not exist", "ca_file")
    timeout = section.get(
        "timeout_seconds", float, DEFAULT_TIMEOUT_SECONDS, check=_positive
    )
    section.finish()
    return SmtpSettings(
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
        timeout_seconds=timeout,
        ca_file=ca_file,
    )


def load_mail_settings(
    section: Section, data_dir: Path, config_dir: Path | None = None
) -> MailSettings:
    """Read the ``mail:`` section; problems go to the section's problem list.

    ``data_dir`` anchors a relative ``maildir``; ``config_dir`` anchors relative
    ``password_file`` and ``ca_file`` paths. With problems recorded the returned
    value holds fallbacks and must not be used: call ``raise_if_any()`` first.
    """
    backend: Backend = section.get(
        "backend",
        str,
        "maildir",
        check=_one_of("maildir", "smtp"),
    )
    sender = _load_sender(section, required=backend == "smtp")
    maildir = _resolve(section.get("maildir", str, DEFAULT_MAILDIR), data_dir)
    smtp: SmtpSettings | None = None
    if section.has("smtp") or backend == "smtp":
        smtp = _load_smtp(section.section("smtp", required=True), config_dir)
    max_attempts = section.get(
        "max_attempts", int, DEFAULT_MAX_ATTEMPTS, check=_positive
    )
    backoff = section.get(
        "backoff_seconds", float, DEFAULT_BACKOFF_SECONDS, check=_positive
    )
    section.finish()
    return MailSettings(
        sender=sender,
        backend=backend,
        maildir=maildir,
        smtp=smtp,
        max_attempts=max_attempts,
        backoff_seconds=backoff,
    )
