"""The offline form as the API receives it: checked field by field, with every
problem explained in the citizen's language (German unless ``language`` is "en").

Pure: the JSON body and the routing rules in, an :class:`OfflineForm` out, or an
error naming the field. No database, no Matrix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge.departments.model import Department, RoutingRules
from bridge.errors import ConsentRequired, InvalidField
from bridge.mail.settings import check_address

LANGUAGES = ("de", "en")
MAX_CLIENT_ID = 100
MAX_NAME = 200
MAX_TOPIC = 200
MAX_EMAIL = 254
MAX_PHONE = 40
_PHONE = re.compile(r"^\+?[0-9 ()/.\-]+$")
_MIN_PHONE_DIGITS = 5
# A domain with a dot and letters at the end: typos like "eva@web" are caught.
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")

# (German, English) for every message; {…} are filled in.
TEXTS: dict[str, tuple[str, str]] = {
    "required": (
        "Bitte füllen Sie das Feld „{label}“ aus.",
        "Please fill in the field '{label}'.",
    ),
    "type": (
        "Das Feld „{label}“ muss Text sein.",
        "The field '{label}' must be text.",
    ),
    "too_long": (
        "„{label}“ ist zu lang: höchstens {limit} Zeichen.",
        "'{label}' is too long: at most {limit} characters.",
    ),
    "email": (
        "„{value}“ ist keine gültige E-Mail-Adresse (Beispiel: eva@example.org).",
        "'{value}' is not a valid e-mail address (for example eva@example.org).",
    ),
    "phone": (
        "„{value}“ ist keine Telefonnummer: bitte nur Ziffern, Leerzeichen und "
        "+ ( ) / - verwenden, mindestens {digits} Ziffern.",
        "'{value}' is not a phone number: use digits, spaces and + ( ) / - only, "
        "at least {digits} digits.",
    ),
    "contact": (
        "Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an, damit wir "
        "Ihnen antworten können.",
        "Please give an e-mail address or a phone number so that we can answer you.",
    ),
    "consent": (
        "Bitte stimmen Sie der Datenschutzerklärung zu; ohne Ihre Zustimmung dürfen "
        "wir Ihre Nachricht nicht speichern.",
        "Please agree to the privacy notice; without your consent we may not store "
        "your message.",
    ),
    "department": (
        "Den Bereich „{value}“ gibt es nicht. Möglich sind: {known}.",
        "There is no department '{value}'. Choose one of: {known}.",
    ),
    "language": (
        "Die Sprache muss „de“ oder „en“ sein.",
        "The language must be 'de' or 'en'.",
    ),
}

LABELS: dict[str, tuple[str, str]] = {
    "client_id": ("client_id", "client_id"),
    "description": ("Ihr Anliegen", "your concern"),
    "name": ("Name", "name"),
    "email": ("E-Mail", "e-mail"),
    "phone": ("Telefon", "phone"),
    "topic": ("Thema", "topic"),
    "department": ("Bereich", "department"),
    "case_id": ("case_id", "case_id"),
}


def text(key: str, language: str, **values: Any) -> str:
    german, english = TEXTS[key]
    return (english if language == "en" else german).format(**values)


@dataclass(frozen=True)
class OfflineForm:
    client_id: str
    department: Department
    #: What the citizen picked, as staff read it (a topic's label), or None.
    topic: str | None
    description: str
    name: str
    email: str | None
    phone: str | None
    language: str
    #: Set when a queued chat is turned into this message.
    case_id: str | None = None


def _language(data: dict[str, Any]) -> str:
    value = data.get("language")
    if value is None:
        return "de"
    if value not in LANGUAGES:
        # The citizen's language is unknown: say it in both.
        raise InvalidField(
            "language", f"{text('language', 'de')} / {text('language', 'en')}"
        )
    return str(value)


def _string(
    data: dict[str, Any],
    name: str,
    language: str,
    *,
    limit: int,
    required: bool = False,
) -> str | None:
    """A trimmed string field; empty counts as missing."""
    label = LABELS[name][1 if language == "en" else 0]
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidField(name, text("type", language, label=label))
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidField(name, text("required", language, label=label))
        return None
    if len(value) > limit:
        raise InvalidField(name, text("too_long", language, label=label, limit=limit))
    return value


def email_problem(value: str) -> bool:
    if check_address(value) is not None:
        return True
    return not _DOMAIN.match(value.rpartition("@")[2])


def phone_problem(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    return not _PHONE.match(value) or digits < _MIN_PHONE_DIGITS


def _department(
    data: dict[str, Any], rules: RoutingRules, language: str
) -> tuple[Department, str | None]:
    """The department (given, or by topic; unknown topics go to the default one)
    and the topic as staff read it."""
    department_id = _string(data, "department", language, limit=32)
    topic_id = _string(data, "topic", language, limit=MAX_TOPIC)
    topic = rules.topic(topic_id) if topic_id else None
    topic_label = topic.label if topic else topic_id
    if department_id is not None:
        department = rules.department(department_id)
        if department is None:
            known = ", ".join(d.id for d in rules.departments)
            raise InvalidField(
                "department",
                text("department", language, value=department_id, known=known),
            )
        return department, topic_label
    department = rules.department_for_topic(topic_id)
    if department is None:  # a rules file always has one; keep mypy honest
        raise InvalidField("department", text("required", language, label="department"))
    return department, topic_label


def parse_form(
    data: dict[str, Any], rules: RoutingRules, *, max_description: int
) -> OfflineForm:
    """Check the body of ``POST /api/v1/offline-messages``; the first problem is
    raised as a 400 naming its field, in the citizen's language."""
    language = _language(data)
    client_id = _string(data, "client_id", language, limit=MAX_CLIENT_ID, required=True)
    if data.get("consent") is not True:
        raise ConsentRequired(text("consent", language), field="consent")
    case_id = _string(data, "case_id", language, limit=40)
    department, topic = _department(data, rules, language)
    description = _string(
        data, "description", language, limit=max_description, required=True
    )
    name = _string(data, "name", language, limit=MAX_NAME, required=True)
    email = _string(data, "email", language, limit=MAX_EMAIL)
    if email is not None and email_problem(email):
        raise InvalidField("email", text("email", language, value=email))
    phone = _string(data, "phone", language, limit=MAX_PHONE)
    if phone is not None and phone_problem(phone):
        raise InvalidField(
            "phone", text("phone", language, value=phone, digits=_MIN_PHONE_DIGITS)
        )
    if email is None and phone is None:
        raise InvalidField("email", text("contact", language))
    assert client_id is not None and description is not None and name is not None
    return OfflineForm(
        client_id=client_id,
        department=department,
        topic=topic,
        description=description,
        name=name,
        email=email,
        phone=phone,
        language=language,
        case_id=case_id,
    )
