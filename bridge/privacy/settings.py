"""Retention settings and the Art. 13 privacy notice, read from ``buergerchat.yaml``
(``retention:``, ``privacy:``) and, per department, from ``departments.yaml``
(``retention:`` under a department overrides the four case periods)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import timedelta

from ..yamlconf import Section

#: The periods a department may set for itself (days).
CASE_PERIODS = (
    "chats_days",
    "offline_answered_days",
    "offline_unanswered_days",
    "files_days",
)
DEFAULT_DAYS = 90


def _days(value: int) -> str | None:
    return None if 0 <= value <= 36500 else "must be a number of days, 0 to 36500"


@dataclass(frozen=True)
class CaseRetention:
    """How long one department's cases are kept, counted from when they ended
    (closed; an offline message nobody answered: from when it was left)."""

    #: A chat, after it was closed.
    chats_days: int = DEFAULT_DAYS
    #: An offline message staff answered, after the case was closed.
    offline_answered_days: int = DEFAULT_DAYS
    #: An offline message nobody answered, after it was left (closed or not).
    offline_unanswered_days: int = DEFAULT_DAYS
    #: The files of a case (citizen's and staff's), after it ended; at most the
    #: case's own period (the case takes its files with it).
    files_days: int = DEFAULT_DAYS

    def days(self, name: str) -> timedelta:
        return timedelta(days=getattr(self, name))

    def longest(self) -> int:
        return max(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Retention:
    """The ``retention:`` section: the defaults of every department and what is
    kept apart from cases."""

    cases: CaseRetention = CaseRetention()
    #: Recipients, subject and body of a sent mail are blanked after this; the
    #: row (without them) stays so the same mail is never sent twice.
    mail_bodies_days: int = 7
    #: Archived transcript PDFs, after the case ended; None (``keep``) keeps
    #: them (the town's records office decides, e.g. for an external
    #: ``transcripts.archive_dir`` under its own rules).
    transcripts_days: int | None = DEFAULT_DAYS
    #: Whether a data subject's erasure request removes archived transcripts too
    #: (false: they are kept under the records rules; the audit says so).
    transcripts_on_erasure: bool = True
    #: The audit of erasures, expiries and exports (no personal data in it).
    audit_days: int = 3 * 365
    #: Synapse: how long a redacted message's content stays for moderators.
    redaction_retention_days: int = 1
    #: Synapse: how long staff members' client addresses are kept.
    user_ips_days: int = 7


def read_case_retention(section: Section, base: CaseRetention) -> CaseRetention:
    values = {
        name: section.get(name, int, getattr(base, name), check=_days)
        for name in CASE_PERIODS
    }
    section.finish()
    return replace(base, **values)


def read_retention(section: Section) -> Retention:
    """The ``retention:`` section of buergerchat.yaml (every key optional)."""
    cases = CaseRetention(
        **{
            name: section.get(name, int, DEFAULT_DAYS, check=_days)
            for name in CASE_PERIODS
        }
    )
    retention = Retention(
        cases=cases,
        mail_bodies_days=section.get("mail_bodies_days", int, 7, check=_days),
        transcripts_days=_transcripts_days(section),
        transcripts_on_erasure=section.get("transcripts_on_erasure", bool, True),
        audit_days=section.get("audit_days", int, 3 * 365, check=_days),
        redaction_retention_days=section.get(
            "redaction_retention_days", int, 1, check=_days
        ),
        user_ips_days=section.get("user_ips_days", int, 7, check=_days),
    )
    section.finish()
    return retention


def _transcripts_days(section: Section) -> int | None:
    def check(value: int | str) -> str | None:
        if isinstance(value, str):
            return None if value == "keep" else "must be a number of days or keep"
        return _days(value)

    value = section.get("transcripts_days", (int, str), DEFAULT_DAYS, check=check)
    return None if value == "keep" else int(value)


@dataclass(frozen=True)
class PrivacyNotice:
    """The ``privacy:`` section: what the Art. 13 notice at ``/privacy`` says
    beyond what the product knows itself (retention, recipients, rights)."""

    controller: str
    controller_contact: str
    dpo_contact: str | None
    purposes: str
    legal_basis: str
    recipients: str
    authority: str


DEFAULT_PURPOSES = (
    "Bearbeitung Ihres Anliegens im Chat, per Nachricht oder Videotermin; "
    "Schutz des Dienstes vor Missbrauch."
)
DEFAULT_LEGAL_BASIS = (
    "Art. 6 Abs. 1 lit. e DSGVO in Verbindung mit den Aufgaben der Verwaltung; "
    "für freiwillige Angaben (Name, E-Mail, Telefon) Ihre Einwilligung, Art. 6 "
    "Abs. 1 lit. a DSGVO, die Sie jederzeit widerrufen können."
)
DEFAULT_RECIPIENTS = (
    "Die Mitarbeitenden der zuständigen Fachbereiche. Ihre Daten liegen auf "
    "Servern der Verwaltung; sie werden nicht an Dritte und nicht in Drittländer "
    "übermittelt."
)
DEFAULT_AUTHORITY = "die Datenschutz-Aufsichtsbehörde Ihres Bundeslandes"


def read_privacy(section: Section, town: str) -> PrivacyNotice:
    notice = PrivacyNotice(
        controller=section.get("controller", str, town),
        controller_contact=section.get("controller_contact", str, ""),
        dpo_contact=section.get("dpo_contact", str, None),
        purposes=section.get("purposes", str, DEFAULT_PURPOSES),
        legal_basis=section.get("legal_basis", str, DEFAULT_LEGAL_BASIS),
        recipients=section.get("recipients", str, DEFAULT_RECIPIENTS),
        authority=section.get("supervisory_authority", str, DEFAULT_AUTHORITY),
    )
    section.finish()
    return notice
