"""Staff read the bots in German or English (``language:`` per staff member in
departments.yaml): answers to a command in the sender's language, notices to a
team or case room in German with an English copy below when one of the
department's staff reads English. The texts come from the ``staff`` catalogue
(bridge/i18n/locale/<language>/LC_MESSAGES/staff.po). In one process
(tests/harness.py)."""

from __future__ import annotations

import gettext
import string
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bridge import i18n
from bridge.departments.rules import load_rules
from bridge.i18n import (
    STAFF_DOMAIN,
    STAFF_LANGUAGES,
    catalogue,
    for_readers,
    notice_languages,
    staff_text,
)
from bridge.yamlconf import ConfigError
from tests.harness import harness

ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


def _keys(language: str) -> list[str]:
    with i18n.po_path(language, STAFF_DOMAIN).open("rb") as f:
        return [str(m.id) for m in read_po(f) if m.id]


# --- the catalogues -------------------------------------------------------------


def test_staff_languages_each_with_a_catalogue() -> None:
    assert STAFF_LANGUAGES == ("de", "en")
    for language in STAFF_LANGUAGES:
        assert i18n.po_path(language, STAFF_DOMAIN).is_file(), language


def test_the_catalogues_have_the_same_keys_and_placeholders() -> None:
    german, english = catalogue("de", STAFF_DOMAIN), catalogue("en", STAFF_DOMAIN)
    assert sorted(_keys("en")) == sorted(_keys("de"))
    assert sorted(english) == sorted(german), "untranslated or fuzzy entries"
    wrong = [k for k in german if _fields(german[k]) != _fields(english[k])]
    assert wrong == [], f"placeholders differ in {wrong}"
    blank = [
        (language, k)
        for language, texts in (("de", german), ("en", english))
        for k, v in texts.items()
        if not v or v.strip() != v
    ]
    assert blank == []
    # German is the source: the English texts are translations, not copies.
    same = [k for k in german if german[k] == english[k] and not k.startswith("usage")]
    assert same == ["team.offline_extra"]


@pytest.mark.parametrize("language", STAFF_LANGUAGES)
def test_staff_catalogues_compile_for_gettext(language: str, tmp_path: Path) -> None:
    with i18n.po_path(language, STAFF_DOMAIN).open("rb") as f:
        parsed = read_po(f, locale=language, domain=STAFF_DOMAIN)
    mo = tmp_path / "staff.mo"
    with mo.open("wb") as f:
        write_mo(f, parsed)
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    assert (
        compiled.gettext("reply.claimed")
        == catalogue(language, "staff")["reply.claimed"]
    )


def test_staff_text_falls_back_to_german() -> None:
    assert staff_text("reply.claimed", "en", name="A") == "A has taken on the case."
    assert staff_text("reply.claimed", "de", name="A") == "A hat den Fall übernommen."
    assert staff_text("reply.claimed", "tr", name="A") == staff_text(
        "reply.claimed", None, name="A"
    )
    # The citizen catalogue is still the default domain of text().
    assert i18n.text("event.opened", "de").startswith("Ihr Anliegen")


def test_the_notice_rule() -> None:
    assert notice_languages(()) == ("de",)
    assert notice_languages(("de", "de")) == ("de",)
    assert notice_languages(("en",)) == ("de", "en")
    assert notice_languages(("en", "de", "xx")) == ("de", "en")
    line = i18n.staff_line("team.invited", names="X")
    assert for_readers(line, ("de",)) == "Eingeladen: X"
    assert for_readers(line, ("de", "en")) == "Eingeladen: X\n\nInvited: X"


# --- departments.yaml -----------------------------------------------------------

DEPARTMENTS = """
departments:
  - id: buergerbuero
    name: "Bürgerbüro"
    staff:
      - id: "@anna.schmidt:buergerchat.localhost"
        language: {language}
      - "@bernd.keller:buergerchat.localhost"
    team_room: "#team:buergerchat.localhost"
"""


def _write(tmp_path: Path, language: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(DEPARTMENTS.format(language=language), encoding="utf-8")
    return path


def test_config_reads_the_staff_language(tmp_path: Path) -> None:
    (dep,) = load_rules(_write(tmp_path, "en")).departments
    assert [(s.mxid, s.language) for s in dep.staff] == [(ANNA, "en"), (BERND, "de")]
    assert dep.languages == ("en", "de")


def test_config_refuses_an_unknown_language_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "fr")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.startswith(f"{path}:7: departments[0].staff[0].language: ")
    assert "unknown language 'fr'; use one of de, en" in problem


def test_the_example_documents_the_key() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "departments.yaml"
    text = example.read_text(encoding="utf-8")
    assert "# Optional, defaults to de." in text and "language: de" in text


# --- in the bridge --------------------------------------------------------------


def _speaks(h: Any, mxid: str, language: str) -> None:
    """Give one staff member another ``language:``, as a rules reload would."""
    rules = h.config.routing
    departments = tuple(
        replace(
            d,
            staff=tuple(
                replace(s, language=language) if s.mxid == mxid else s for s in d.staff
            ),
        )
        for d in rules.departments
    )
    h.config.replace_rules(replace(rules, departments=departments))


def _bodies(h: Any, room_id: str) -> list[str]:
    return [c["body"] for c in h.hs.messages(room_id)]


def _team(h: Any, alias: str) -> list[dict[str, Any]]:
    return list(h.hs.messages(h.hs.room_of_alias(alias).room_id))


async def test_a_reply_is_in_the_language_of_who_sent_the_command(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        _speaks(h, ANNA, "en")
        english, _ = await h.open_case("buergerbuero")
        german, _ = await h.open_case("bauen")
        await h.staff_joins(english, ANNA)
        await h.staff_says(english, ANNA, "!claim")
        await h.staff_joins(german, BERND)
        await h.staff_says(german, BERND, "!claim")
        await h.staff_says(german, BERND, "!claim")
        assert english.room_id and german.room_id
        assert "Anna Schmidt has taken on the case." in _bodies(h, english.room_id)
        assert "Anna Schmidt hat den Fall übernommen." not in _bodies(
            h, english.room_id
        )
        replies = _bodies(h, german.room_id)
        assert "Bernd Keller hat den Fall übernommen." in replies
        assert "Sie haben den Fall bereits übernommen." in replies
        await h.staff_says(english, ANNA, "!transfer nirgendwo")
        assert (
            "Unknown department 'nirgendwo'. Possible: buergerbuero, bauen, "
            "standesamt, rente." in _bodies(h, english.room_id)
        )
        # Someone departments.yaml does not list (an admin) is answered in German.
        assert h.commands.language_of("@admin:buergerchat.localhost") == "de"


async def test_help_in_english_lists_the_same_commands(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        _speaks(h, ANNA, "en")
        case, _ = await h.open_case("buergerbuero")
        await h.staff_joins(case, ANNA)
        await h.staff_joins(case, BERND)
        await h.staff_says(case, ANNA, "!help")
        await h.staff_says(case, BERND, "!help")
        assert case.room_id
        bodies = _bodies(h, case.room_id)
        (german,) = [b for b in bodies if b.startswith("Befehle")]
        (english,) = [b for b in bodies if b.startswith("Commands")]
        assert german.startswith("Befehle in diesem Raum:\n")
        assert english.startswith("Commands in this room:\n")
        assert german == h.commands.help_text()

        def names(text: str) -> list[str]:
            return sorted(line.split()[0] for line in text.splitlines()[1:])

        assert names(english) == names(german)
        assert len(names(german)) >= 10
        assert (
            "!transfer <department>|<partner>:<department> [note] – hand the case "
            "to another" in english
        )
        assert (
            "!transfer <abteilung>|<partner>:<abteilung> [notiz] – an eine andere "
            "Abteilung" in german
        )


async def test_a_team_notice_is_german_or_german_and_english(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        german_case, _ = await h.open_case("bauen", language="en")
        await h.cases.post_citizen_message(german_case, "g1", "Guten Tag")
        (german,) = _team(h, "team-bauen")
        assert german["body"].startswith(f"Neuer Live-Chat: {german_case.reference}")
        assert " · Sprache: Englisch" in german["body"]
        assert "\n\n" not in german["body"] and "New live chat" not in german["body"]

        _speaks(h, ANNA, "en")
        case, _ = await h.open_case("buergerbuero", language="en")
        await h.cases.post_citizen_message(case, "c1", "Hallo")
        (notice,) = _team(h, "team-buergerbuero")
        first, second = notice["body"].split("\n\n")
        assert first.startswith(f"Neuer Live-Chat: {case.reference}")
        assert "Sprache: Englisch" in first and "\n> Hallo\n" in first
        assert "Eingeladen: Anna Schmidt" in first and "Zum Fall: https://" in first
        assert second.startswith(f"New live chat: {case.reference}")
        assert "Language: English" in second and "Invited: Anna Schmidt" in second
        assert "Hallo" not in second  # the citizen's words are quoted once
        assert "Open the case: https://matrix.to/" in second
        assert "<br><br><b>New live chat: " in notice["formatted_body"]
