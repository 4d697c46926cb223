"""The offline form as the API receives it: checked field by field, with every
problem explained in the citizen's language (``form.*`` in the citizen catalogue,
bridge/i18n).

Pure: the JSON body and the routing rules in, an :class:`OfflineForm` out, or an
error naming the field. No database, no Matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.api.fields import (
    MAX_NAME,
    MAX_TOPIC,
    contact_fields,
    form_head,
    label,
    string_field,
    text,
)
from bridge.departments.model import Department, RoutingRules
from bridge.errors import InvalidField


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


def _department(
    data: dict[str, Any], rules: RoutingRules, language: str
) -> tuple[Department, str | None]:
    """The department (given, or by topic; unknown topics go to the default one)
    and the topic as staff read it."""
    department_id = string_field(data, "department", language, limit=32)
    topic_id = string_field(data, "topic", language, limit=MAX_TOPIC)
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
        raise InvalidField(
            "department",
            text("required", language, label=label("department", language)),
        )
    return department, topic_label


def parse_form(
    data: dict[str, Any], rules: RoutingRules, *, max_description: int
) -> OfflineForm:
    """Check the body of ``POST /api/v1/offline-messages``; the first problem is
    raised as a 400 naming its field, in the citizen's language."""
    language, client_id = form_head(data)
    case_id = string_field(data, "case_id", language, limit=40)
    department, topic = _department(data, rules, language)
    description = string_field(
        data, "description", language, limit=max_description, required=True
    )
    name = string_field(data, "name", language, limit=MAX_NAME, required=True)
    email, phone = contact_fields(data, language)
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
