"""The ``accessibility:`` section of buergerchat.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from ..departments.model import RoutingRules
from ..mail.settings import check_address
from ..yamlconf import Section, check_http_url

#: How far the chat meets BITV 2.0, in the wording of the EU model statement.
COMPLIANCE = {
    "full": "vollständig vereinbar",
    "partial": "teilweise vereinbar",
    "none": "nicht vereinbar",
}

DEFAULT_ENFORCEMENT = (
    "Wenn Sie auf Ihre Rückmeldung innerhalb von sechs Wochen keine oder keine "
    "zufriedenstellende Antwort erhalten, können Sie sich an die Durchsetzungs- "
    "und Schlichtungsstelle für Barrierefreiheit Ihres Bundeslandes wenden. Das "
    "Verfahren ist kostenlos; Sie brauchen keinen Rechtsbeistand."
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class AccessibilitySettings:
    #: The town's own statement page instead of the bridge's.
    statement_url: str | None
    compliance: str
    #: Where feedback goes (a mailbox someone reads).
    feedback_email: str | None
    feedback_phone: str | None
    enforcement: str
    enforcement_url: str | None
    #: Shortcomings the town knows of beyond those the product names itself.
    known_issues: tuple[str, ...]
    #: When the town last reviewed the statement (YYYY-MM-DD), or None.
    reviewed: str | None
    easy_language_url: str | None
    #: The town's explanation of the chat in German Sign Language (DGS).
    sign_language_url: str | None
    #: The town's own statement template (a file in the config folder, with the
    #: built-in one's $placeholders), or None: the built-in one.
    template: Path | None = None


def _date(value: str) -> str | None:
    return None if _DATE.match(value) else f"'{value}' is not a date like 2026-12-03"


def _compliance(value: str) -> str | None:
    if value in COMPLIANCE:
        return None
    return f"must be one of {', '.join(COMPLIANCE)}, not '{value}'"


def _url(section: Section, key: str) -> str | None:
    value: str | None = section.get(key, str, None, check=check_http_url)
    return value


#: The placeholders a statement template may use (bridge/accessibility/statement.html).
PLACEHOLDERS = frozenset(
    Template(
        (Path(__file__).parent / "statement.html").read_text("utf-8")
    ).get_identifiers()
)


def _template(section: Section, config_dir: Path | None) -> Path | None:
    name = section.get("template", str, None)
    if name is None or config_dir is None:
        return None
    path = config_dir / name
    try:
        found = Template(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        section.error(f"cannot read the template {path}: {e}", "template")
        return None
    unknown = set(found.get_identifiers()) - PLACEHOLDERS
    if unknown or not found.is_valid():
        names = ", ".join(sorted(unknown)) or "a lone $ (write $$ for a dollar sign)"
        section.error(f"{name}: unknown placeholder(s): {names}", "template")
        return None
    return path


def read_accessibility(
    section: Section, config_dir: Path | None = None
) -> AccessibilitySettings:
    issues: list[str] = []
    for item in section.items("known_issues"):
        if isinstance(item.value, str) and item.value.strip():
            issues.append(item.value.strip())
        else:
            item.error("must be a text describing what is not accessible")
    settings = AccessibilitySettings(
        statement_url=_url(section, "statement_url"),
        compliance=section.get("compliance", str, "partial", check=_compliance),
        feedback_email=section.get("feedback_email", str, None, check=check_address),
        feedback_phone=section.get("feedback_phone", str, None),
        enforcement=section.get("enforcement", str, DEFAULT_ENFORCEMENT),
        enforcement_url=_url(section, "enforcement_url"),
        known_issues=tuple(issues),
        reviewed=section.get("reviewed", str, None, check=_date),
        easy_language_url=_url(section, "easy_language_url"),
        sign_language_url=_url(section, "sign_language_url"),
        template=_template(section, config_dir),
    )
    section.finish()
    return settings


def feedback_address(
    settings: AccessibilitySettings, rules: RoutingRules
) -> str | None:
    """Where feedback is mailed: ``feedback_email``, else the inbox of the
    department unknown topics go to (a mailbox the town reads anyway)."""
    if settings.feedback_email:
        return settings.feedback_email
    fallback = rules.fallback_department()
    return fallback.inbox if fallback is not None else None
