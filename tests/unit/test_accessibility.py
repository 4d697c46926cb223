"""The accessibility statement, its settings and the feedback form below the e2e
layer: what the statement says follows the settings, town text is escaped, and
every wrong field is named in the sender's language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.accessibility.feedback import MAX_MESSAGE, parse_feedback
from bridge.accessibility.pages import (
    PRODUCT_GAPS,
    render_easy_language,
    render_statement,
)
from bridge.config import ConfigError, load_config
from bridge.errors import ConsentRequired, InvalidField
from tests.unit.test_config import config_copy

GOOD = {"description": "Der Senden-Knopf ist zu klein.", "consent": True}


def test_example_links_statement_and_easy_language(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    assert config.accessibility_links == {
        "accessibility_url": "http://127.0.0.1:8080/accessibility",
        "easy_language_url": "http://127.0.0.1:8080/leichte-sprache",
        "sign_language_url": None,
    }


def test_town_pages_replace_the_bridge_pages(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["accessibility"] = {
            "statement_url": "https://www.musterstadt.example/barrierefreiheit",
            "easy_language_url": "https://www.musterstadt.example/ls",
            "sign_language_url": "https://www.musterstadt.example/dgs",
            "reviewed": "2026-11-30",
        }

    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    links = config.accessibility_links
    assert links["accessibility_url"] == (
        "https://www.musterstadt.example/barrierefreiheit"
    )
    assert links["sign_language_url"] == "https://www.musterstadt.example/dgs"
    page = render_statement(config)
    assert "am 30.11.2026 zuletzt überprüft" in page
    assert "Gebärdensprache (Video)" in page and "noch nicht an" not in page


def test_wrong_settings_are_named(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["accessibility"] = {
            "compliance": "mostly",
            "sign_language_url": "dgs.mp4",
            "reviewed": "30.11.2026",
            "feedback_email": "not an address",
            "known_issues": [{"a": 1}],
        }

    with pytest.raises(ConfigError) as caught:
        load_config(config_copy(tmp_path, change), tmp_path / "data")
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == [
        "accessibility.compliance",
        "accessibility.feedback_email",
        "accessibility.known_issues[0]",
        "accessibility.reviewed",
        "accessibility.sign_language_url",
    ]


def test_a_feedback_address_is_required(tmp_path: Path) -> None:
    """BITV 2.0 asks for a feedback channel: without feedback_email and without
    an inbox of the default department the config is refused."""

    def change(data: dict) -> None:
        data.pop("accessibility", None)

    folder = config_copy(tmp_path, change)
    rules = folder / "departments.yaml"
    rules.write_text(
        re.sub(r"^\s+inbox: .*\n", "", rules.read_text(encoding="utf-8"), flags=re.M),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(folder, tmp_path / "data")
    assert any("feedback" in p.message for p in caught.value.problems)


def test_statement_names_gaps_and_escapes_town_text(tmp_path: Path) -> None:
    def change(data: dict) -> None:
        data["town"]["name"] = "Stadt <b>Muster</b>"
        data["accessibility"] = {
            "known_issues": ['Formular "Gewerbe" <script>alert(1)</script>'],
            "enforcement": "Stelle & Co <i>",
            "feedback_phone": "07205 <1>",
        }

    config = load_config(config_copy(tmp_path, change), tmp_path / "data")
    page = render_statement(config)
    assert "<script>" not in page and "<b>Muster" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Stelle &amp; Co &lt;i&gt;" in page and "07205 &lt;1&gt;" in page
    assert "teilweise vereinbar" in page
    for gap in PRODUCT_GAPS:
        assert gap[:40] in page
    assert "Gebärdensprache (DGS)" in page  # no DGS video: said as a gap
    # Without feedback_email: the default department's inbox.
    assert 'mailto:buergerbuero@musterstadt.example"' in page


def test_refilled_form_marks_the_wrong_field(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    page = render_statement(
        config,
        values={"description": '"><script>x</script>', "email": "eva@web"},
        errors={"email": "Bitte prüfen"},
    )
    assert "<script>x" not in page
    assert 'aria-invalid="true" aria-describedby="email-error"' in page
    assert '<p class="error" id="email-error">Bitte prüfen</p>' in page
    assert page.count('aria-invalid="true"') == 1


def test_easy_language_page_uses_the_settings(tmp_path: Path) -> None:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    page = render_easy_language(config)
    assert f"Nach {config.retention.cases.chats_days} Tagen" in page
    assert "Türkisch" in page and "Arabisch" in page
    assert "/accessibility#feedback" in page and "$" not in page


def test_feedback_fields() -> None:
    form = parse_feedback({**GOOD, "email": " eva@example.org ", "where": "Chat"})
    assert form.email == "eva@example.org" and form.language == "de"
    with pytest.raises(InvalidField) as caught:
        parse_feedback({"consent": True})
    assert caught.value.extra["field"] == "description"
    with pytest.raises(ConsentRequired):
        parse_feedback({"description": "x"})
    with pytest.raises(InvalidField) as caught:
        parse_feedback({**GOOD, "email": "eva@web"})
    assert caught.value.extra["field"] == "email"
    with pytest.raises(InvalidField) as caught:
        parse_feedback({**GOOD, "description": "x" * (MAX_MESSAGE + 1)})
    assert str(MAX_MESSAGE) in caught.value.message
    with pytest.raises(InvalidField) as caught:
        parse_feedback({**GOOD, "name": ["a"]})
    assert caught.value.extra["field"] == "name"
    # In the sender's language.
    with pytest.raises(InvalidField) as caught:
        parse_feedback({"consent": True, "language": "en"})
    assert "Please" in caught.value.message


def test_the_town_can_bring_its_own_statement_template(tmp_path: Path) -> None:
    """accessibility.template: a file in the config folder with the built-in
    placeholders; an unknown placeholder is refused at load."""

    def change(data: dict) -> None:
        data["accessibility"] = {"template": "erklaerung.html"}

    folder = config_copy(tmp_path, change)
    (folder / "erklaerung.html").write_text(
        "<h1>Erklärung der $town</h1><p>$compliance</p><ul>$gaps</ul>$error_email",
        encoding="utf-8",
    )
    config = load_config(folder, tmp_path / "data")
    page = render_statement(config)
    assert page.startswith("<h1>Erklärung der Stadt Musterstadt</h1>")
    assert "teilweise vereinbar" in page and PRODUCT_GAPS[0][:30] in page

    (folder / "erklaerung.html").write_text("$town $telefonnummer", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(folder, tmp_path / "data")
    [problem] = caught.value.problems
    assert problem.path == "accessibility.template"
    assert "telefonnummer" in problem.message
