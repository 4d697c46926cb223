"""The mail: section: defaults, SMTP settings, secrets from files, and errors that
name file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.mail.settings import MailSettings, load_mail_settings
from bridge.yamlconf import ConfigError, Problems, Section


def _load(tmp_path: Path, text: str) -> tuple[MailSettings, Problems]:
    file = tmp_path / "buergerchat.yaml"
    file.write_text(textwrap.dedent(text), encoding="utf-8")
    problems = Problems()
    root = Section.load(file, problems)
    settings = load_mail_settings(
        root.section("mail"), data_dir=tmp_path / "data", config_dir=tmp_path
    )
    return settings, problems


def _messages(problems: Problems) -> list[str]:
    return [f"{p.line}: {p.path}: {p.message}" for p in problems.items]


def test_without_mail_section_mail_goes_to_the_local_maildir(tmp_path: Path) -> None:
    """No mail: section means the embedded default: a Maildir in the data folder."""
    settings, problems = _load(tmp_path, "town: {}\n")
    assert problems.items == []
    assert settings.backend == "maildir"
    assert settings.maildir == tmp_path / "data" / "mail"
    assert settings.smtp is None
    assert (settings.max_attempts, settings.backoff_seconds) == (8, 30.0)
    assert settings.sender.address == "buergerchat@localhost"


def test_smtp_settings_with_password_from_file(tmp_path: Path) -> None:
    """A complete SMTP config is read; the password comes from its file, trimmed."""
    (tmp_path / "smtp_password").write_text("s3cr3t-Passwort\n", encoding="utf-8")
    settings, problems = _load(
        tmp_path,
        """\
        mail:
          from:
            address: buergerchat@hockenheim.de
            name: Bürgerchat Stadt Hockenheim
          backend: smtp
          smtp:
            host: smtp.hockenheim.de
            username: buergerchat
            password_file: smtp_password
            timeout_seconds: 10
          max_attempts: 5
          backoff_seconds: 2.5
        """,
    )
    assert _messages(problems) == []
    assert settings.backend == "smtp"
    assert settings.sender.name == "Bürgerchat Stadt Hockenheim"
    assert settings.sender.domain == "hockenheim.de"
    smtp = settings.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security) == (
        "smtp.hockenheim.de",
        587,
        "starttls",
    )
    assert (smtp.username, smtp.password) == ("buergerchat", "s3cr3t-Passwort")
    assert smtp.timeout_seconds == 10.0
    assert "s3cr3t" not in repr(smtp)
    assert (settings.max_attempts, settings.backoff_seconds) == (5, 2.5)


def test_port_follows_security(tmp_path: Path) -> None:
    """Implicit TLS defaults to port 465; a given port wins."""
    settings, problems = _load(
        tmp_path,
        """\
        mail:
          smtp: {host: mx.example.org, security: tls}
        """,
    )
    assert problems.items == [] and settings.smtp is not None
    assert settings.smtp.port == 465
    assert settings.backend == "maildir"  # smtp prepared, not yet switched on


def test_from_as_one_line(tmp_path: Path) -> None:
    """from: may also be written as 'Name <address>'."""
    settings, problems = _load(
        tmp_path, 'mail:\n  from: "Bürgerchat Hofheim <chat@hofheim.de>"\n'
    )
    assert problems.items == []
    assert (settings.sender.name, settings.sender.address) == (
        "Bürgerchat Hofheim",
        "chat@hofheim.de",
    )


def test_smtp_backend_needs_from_and_host(tmp_path: Path) -> None:
    """With backend smtp, a missing from and smtp.host are named with their line."""
    _, problems = _load(
        tmp_path,
        """\
        mail:
          backend: smtp
          smtp:
            port: 587
        """,
    )
    assert _messages(problems) == [
        "2: mail.from: required with backend smtp: address and name",
        "4: mail.smtp.host: required key is missing",
    ]
    with pytest.raises(ConfigError, match="buergerchat.yaml:4: mail.smtp.host"):
        problems.raise_if_any()


@pytest.mark.parametrize("secret", ["changeme", "CHANGEME\n", "<your password>", ""])
def test_placeholder_password_in_file_is_refused(tmp_path: Path, secret: str) -> None:
    """A password file still holding the example's placeholder refuses to start."""
    (tmp_path / "pw").write_text(secret, encoding="utf-8")
    _, problems = _load(
        tmp_path,
        """\
        mail:
          smtp:
            host: mx.example.org
            username: chat
            password_file: pw
        """,
    )
    [problem] = _messages(problems)
    assert problem.startswith("5: mail.smtp.password_file: the password in ")


def test_placeholder_inline_password_is_refused(tmp_path: Path) -> None:
    """password: changeme copied from the example config is refused."""
    _, problems = _load(
        tmp_path,
        """\
        mail:
          smtp:
            host: mx.example.org
            username: chat
            password: changeme
        """,
    )
    assert len(problems.items) == 1
    assert problems.items[0].path == "mail.smtp.password"
    assert "placeholder" in problems.items[0].message


def test_missing_password_file_is_named(tmp_path: Path) -> None:
    """A password file that does not exist is reported with its full path."""
    _, problems = _load(
        tmp_path,
        """\
        mail:
          smtp: {host: mx.example.org, username: chat, password_file: nope}
        """,
    )
    [problem] = problems.items
    assert problem.path == "mail.smtp.password_file"
    assert str(tmp_path / "nope") in problem.message


def test_login_over_plain_connection_to_remote_host_is_refused(tmp_path: Path) -> None:
    """security: none with a login is only allowed to a relay on loopback."""
    (tmp_path / "pw").write_text("a-real-one", encoding="utf-8")
    text = """\
        mail:
          smtp:
            host: {host}
            security: none
            username: chat
            password_file: pw
        """
    _, problems = _load(tmp_path, text.replace("{host}", "mx.example.org"))
    assert _messages(problems) == [
        "4: mail.smtp.security: would send the password unencrypted to "
        "mx.example.org; use starttls or tls"
    ]
    _, problems = _load(tmp_path, text.replace("{host}", "127.0.0.1"))
    assert problems.items == []


def test_wrong_values_and_typos_are_all_reported(tmp_path: Path) -> None:
    """Every mistake is listed in one run, with a hint for a misspelt key."""
    _, problems = _load(
        tmp_path,
        """\
        mail:
          backend: sendmail
          from: {address: not-an-address}
          smtp:
            host: mx.example.org
            port: 70000
            security: ssl
            username: chat
          max_attemps: 3
          backoff_seconds: 0
        """,
    )
    assert _messages(problems) == [
        "2: mail.backend: must be one of maildir, smtp, not 'sendmail'",
        "3: mail.from.address: 'not-an-address' is not an e-mail address like "
        "buergerchat@example.org",
        "7: mail.smtp.security: must be one of starttls, tls, none, not 'ssl'",
        "6: mail.smtp.port: must be a TCP port between 1 and 65535",
        "8: mail.smtp.username: a username needs password_file (or password)",
        "10: mail.backoff_seconds: must be greater than 0",
        "9: mail.max_attemps: unknown key; did you mean 'max_attempts'?",
    ]
