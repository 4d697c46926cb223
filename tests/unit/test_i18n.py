"""The citizen-facing catalogues (bridge/i18n/locale): every key in every language
with the same placeholders, readable by gettext tools, and no citizen-facing line
written outside them."""

from __future__ import annotations

import ast
import gettext
import re
import string
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bridge import i18n
from bridge.api.widget import assemble_widget, texts_js
from bridge.i18n import LANGUAGES, catalogue, say

REPO = Path(__file__).resolve().parents[2]
WIDGET_SRC = REPO / "bridge" / "widget" / "src"


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


def _keys(language: str) -> list[str]:
    with i18n.po_path(language).open("rb") as f:
        return [str(m.id) for m in read_po(f) if m.id]


def test_six_languages_each_with_a_catalogue() -> None:
    assert LANGUAGES == ("de", "en", "tr", "ar", "uk", "ru")
    for language in LANGUAGES:
        assert i18n.po_path(language).is_file(), language


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_every_key_in_every_language_with_the_same_placeholders(language: str) -> None:
    german, other = catalogue("de"), catalogue(language)
    assert sorted(_keys(language)) == sorted(_keys("de"))
    missing = sorted(set(german) - set(other))
    assert missing == [], f"{language} lacks (or has fuzzy/empty): {missing}"
    wrong = [k for k in german if _fields(german[k]) != _fields(other[k])]
    assert wrong == [], f"{language}: placeholders differ in {wrong}"

    # Leading or trailing spaces only where German has them (" · gelesen"
    # follows the time it is appended to).
    def edges(text: str) -> tuple[bool, bool]:
        return text[:1].isspace(), text[-1:].isspace()

    blank = [
        k for k, v in other.items() if not v.strip() or edges(v) != edges(german[k])
    ]
    assert blank == [], f"{language}: blank, or padded unlike German: {blank}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogues_compile_for_gettext(language: str, tmp_path: Path) -> None:
    """What Poedit or msgfmt would make of the file: the standard library's
    gettext reads the compiled catalogue and finds the same texts."""
    with i18n.po_path(language).open("rb") as f:
        parsed = read_po(f, locale=language)
    assert parsed.locale is not None and str(parsed.locale) == language
    mo = tmp_path / "citizen.mo"
    with mo.open("wb") as f:
        write_mo(f, parsed)
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    assert compiled.gettext("event.routed") == catalogue(language)["event.routed"]


def test_say_fills_the_case_language_and_falls_back_to_german() -> None:
    assert say("routed", "en", department="X").startswith("It is your turn")
    assert say("routed", "xx", department="X") == say("routed", "de", department="X")
    for language in LANGUAGES:
        assert "Bürgerbüro" in say("routed", language, department="Bürgerbüro")
    assert say("routed", "tr", department="X") != say("routed", "de", department="X")


def test_language_names_and_direction_from_cldr() -> None:
    assert i18n.language_name("tr", "de") == "Türkisch"
    assert i18n.language_name("ar", "en") == "Arabic"
    assert i18n.language_name("uk") == "Українська"
    assert [i18n.direction(x) for x in LANGUAGES] == ["ltr"] * 3 + ["rtl"] + ["ltr"] * 2


def test_the_widget_carries_every_language_and_uses_only_known_keys() -> None:
    js = texts_js()
    for language in LANGUAGES:
        assert f'"{language}":{{' in js
    assert '"dir":"rtl"' in js
    used: set[str] = set()
    for path in WIDGET_SRC.glob("*.js"):
        source = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt: "(\w+)"', source))
        used |= set(re.findall(r'\b(?:t|tx)\((?:[^,()]+, )?"(\w+)"', source))
        used |= set(re.findall(r'\blabel: "(\w+)"', source))
    widget = i18n.section("widget", "de")
    unknown = sorted(k for k in used if k not in widget)
    assert unknown == [], f"widget uses keys missing from the catalogue: {unknown}"
    assert "var TEXT = " in assemble_widget()


def test_system_lines_come_from_the_catalogue() -> None:
    """``add_system_event`` gets its text from ``say(...)`` (or a variable built
    from it) everywhere under bridge/ and bots/: a German literal there is the
    bug the catalogue fixed (English citizens read German lines)."""
    offenders = []
    for path in sorted([*REPO.glob("bridge/**/*.py"), *REPO.glob("bots/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_system_event"
                and len(node.args) >= 2
            ):
                continue
            text = node.args[1]
            if isinstance(text, ast.Constant | ast.JoinedStr):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
