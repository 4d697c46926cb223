"""The offline form: every field checked, problems named by field, in German by
default and in English when the citizen chose English."""

from __future__ import annotations

from typing import Any

import pytest

from bots.offline.form import parse_form
from bridge.departments.model import Department, RoutingRules, Staff, Topic
from bridge.errors import BuergerchatError

OFFICE = Department(
    id="buergerbuero",
    name="Bürgerbüro",
    staff=(Staff("@anna:x"),),
    topics=(Topic("personalausweis", "Personalausweis und Reisepass"),),
    inbox="buergerbuero@musterstadt.example",
)
BUILDING = Department(
    id="bauen",
    name="Bauen und Wohnen",
    staff=(Staff("@bernd:x"),),
    topics=(Topic("bauantrag", "Bauantrag"),),
)
RULES = RoutingRules(departments=(OFFICE, BUILDING), default_department="buergerbuero")


def body(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "client_id": "c-1",
        "topic": "bauantrag",
        "description": "  Wann ist mein Bauantrag fertig?\nDanke.  ",
        "name": " Eva Muster ",
        "email": "eva@example.org",
        "phone": None,
        "consent": True,
    }
    data.update(change)
    return data


def refused(data: dict[str, Any]) -> BuergerchatError:
    with pytest.raises(BuergerchatError) as info:
        parse_form(data, RULES, max_description=100)
    assert info.value.status == 400
    return info.value


def test_a_good_form_is_read_and_trimmed() -> None:
    """The topic decides the department and is kept as its label; text is trimmed
    at the edges only; language defaults to German."""
    form = parse_form(body(), RULES, max_description=100)
    assert form.department is BUILDING and form.topic == "Bauantrag"
    assert form.description == "Wann ist mein Bauantrag fertig?\nDanke."
    assert form.name == "Eva Muster" and form.email == "eva@example.org"
    assert form.phone is None and form.language == "de" and form.case_id is None


def test_unknown_topic_goes_to_the_default_department() -> None:
    """A topic no department lists goes to default_department, and is kept as
    typed so staff still read it."""
    form = parse_form(body(topic="hundesteuer"), RULES, max_description=100)
    assert form.department is OFFICE and form.topic == "hundesteuer"


def test_department_wins_over_topic() -> None:
    """An explicit department is used as given."""
    form = parse_form(
        body(department="buergerbuero", topic="bauantrag"), RULES, max_description=100
    )
    assert form.department is OFFICE


@pytest.mark.parametrize(
    ("change", "field", "german", "english"),
    [
        ({"description": " "}, "description", "Ihr Anliegen", "your concern"),
        ({"description": "x" * 101}, "description", "höchstens 100", "at most 100"),
        ({"name": ""}, "name", "„Name“", "'name'"),
        ({"name": 7}, "name", "muss Text sein", "must be text"),
        ({"email": "eva"}, "email", "keine gültige", "not a valid"),
        ({"email": "eva@localhost"}, "email", "keine gültige", "not a valid"),
        ({"email": "eva maria@example.org"}, "email", "keine gültige", "not a valid"),
        ({"phone": "abc"}, "phone", "keine Telefonnummer", "not a phone number"),
        ({"phone": "12 3"}, "phone", "mindestens 5", "at least 5"),
        ({"email": None, "phone": ""}, "email", "Telefonnummer an", "phone number"),
        ({"consent": "yes"}, "consent", "Datenschutz", "privacy notice"),
        ({"department": "zoo"}, "department", "buergerbuero, bauen", "Choose one"),
        ({"client_id": None}, "client_id", "client_id", "client_id"),
        ({"client_id": "x" * 101}, "client_id", "100", "100"),
    ],
)
def test_each_problem_names_its_field_in_the_citizens_language(
    change: dict[str, Any], field: str, german: str, english: str
) -> None:
    """German without a language, English with language=en; the field is named."""
    de = refused(body(**change))
    assert de.extra["field"] == field and german in de.message
    en = refused(body(language="en", **change))
    assert en.extra["field"] == field and english in en.message


def test_unknown_language_is_explained_in_both() -> None:
    error = refused(body(language="fr"))
    assert error.extra["field"] == "language"
    assert "Die Sprache" in error.message and "The language" in error.message


def test_phone_alone_is_enough() -> None:
    """At least one way to answer: a phone number without e-mail is fine."""
    form = parse_form(
        body(email=None, phone="+49 (621) 123/456-7"), RULES, max_description=100
    )
    assert form.email is None and form.phone == "+49 (621) 123/456-7"


def test_case_id_is_kept_for_converting_a_queued_chat() -> None:
    form = parse_form(body(case_id="c_abc"), RULES, max_description=100)
    assert form.case_id == "c_abc"
