"""Fields of the anonymous forms (the offline message, accessibility feedback),
checked one by one, every problem explained in the citizen's language
(``form.*`` in the citizen catalogue, bridge/i18n). Pure: no database, no Matrix.
"""

from __future__ import annotations

import re
from typing import Any

from bridge import i18n
from bridge.errors import ConsentRequired, InvalidField
from bridge.i18n import LANGUAGES
from bridge.mail.settings import check_address

MAX_CLIENT_ID = 100
MAX_NAME = 200
MAX_TOPIC = 200
MAX_EMAIL = 254
MAX_PHONE = 40
_PHONE = re.compile(r"^\+?[0-9 ()/.\-]+$")
MIN_PHONE_DIGITS = 5
# A domain with a dot and letters at the end: typos like "eva@web" are caught.
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")

#: The fields a message names by their label (in the citizen's language, from
#: the catalogue's ``form.label_*``); the others by their API name.
LABELLED = ("description", "name", "email", "phone", "topic", "department")


def text(key: str, language: str, **values: Any) -> str:
    """The check's message ``form.<key>`` in the citizen's language."""
    return i18n.text(f"form.{key}", language).format(**values)


def label(name: str, language: str) -> str:
    return i18n.text(f"form.label_{name}", language) if name in LABELLED else name


def language_field(data: dict[str, Any]) -> str:
    value = data.get("language")
    if value is None:
        return "de"
    if value not in LANGUAGES:
        # The citizen's language is unknown: say it in both.
        known = ", ".join(LANGUAGES)
        both = [text("language", lang, known=known) for lang in ("de", "en")]
        raise InvalidField("language", " / ".join(both))
    return str(value)


def string_field(
    data: dict[str, Any],
    name: str,
    language: str,
    *,
    limit: int,
    required: bool = False,
) -> str | None:
    """A trimmed string field; empty counts as missing."""
    named = label(name, language)
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidField(name, text("type", language, label=named))
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidField(name, text("required", language, label=named))
        return None
    if len(value) > limit:
        raise InvalidField(name, text("too_long", language, label=named, limit=limit))
    return value


def email_problem(value: str) -> bool:
    if check_address(value) is not None:
        return True
    return not _DOMAIN.match(value.rpartition("@")[2])


def phone_problem(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    return not _PHONE.match(value) or digits < MIN_PHONE_DIGITS


def form_head(data: dict[str, Any]) -> tuple[str, str]:
    """What every anonymous form starts with: the citizen's language, the
    request's ``client_id``, and consent (else BC_CONSENT_REQUIRED)."""
    language = language_field(data)
    client_id = string_field(
        data, "client_id", language, limit=MAX_CLIENT_ID, required=True
    )
    if data.get("consent") is not True:
        raise ConsentRequired(text("consent", language), field="consent")
    assert client_id is not None
    return language, client_id


def contact_fields(
    data: dict[str, Any], language: str, *, email_required: bool = False
) -> tuple[str | None, str | None]:
    """E-mail and phone, each checked when given."""
    email = string_field(
        data, "email", language, limit=MAX_EMAIL, required=email_required
    )
    if email is not None and email_problem(email):
        raise InvalidField("email", text("email", language, value=email))
    phone = string_field(data, "phone", language, limit=MAX_PHONE)
    if phone is not None and phone_problem(phone):
        raise InvalidField(
            "phone", text("phone", language, value=phone, digits=MIN_PHONE_DIGITS)
        )
    return email, phone
