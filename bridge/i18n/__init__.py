"""Everything a citizen reads, in six languages, from one gettext catalogue each.

``locale/<language>/LC_MESSAGES/citizen.po`` holds every citizen-facing line: the
system events of the chat timeline (``event.*``), the widget's texts
(``widget.*``) and the API's errors as the widget shows them (``error.*``). The
message ids are stable keys, not German sentences, so a German wording can change
without touching the other languages; German is the source and the fallback.
Files are read with Babel (the Python i18n library: PO parsing, plural rules and
CLDR language names), so translators use any gettext tool (Poedit, Weblate).

Staff read the bots' answers and notices from a second domain, ``staff.po``
(``reply.*``, ``help.*``, ``team.*``…), in German or English per staff member
(``language:`` in departments.yaml): :func:`staff_text` for one reader,
:func:`for_readers` for a room several staff read.

``tests/unit/test_i18n.py`` checks that every key exists in every language with
the same placeholders. How a town adds a language: README, "Languages".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "citizen"
#: The languages citizens can choose, in the order the widget offers them.
LANGUAGES: tuple[str, ...] = ("de", "en", "tr", "ar", "uk", "ru")
SOURCE = "de"
STAFF_DOMAIN = "staff"
#: The languages staff can read notices and bot answers in (``language:``).
STAFF_LANGUAGES: tuple[str, ...] = ("de", "en")
#: A text that can be written in each staff language: ``render(language)``.
Localized = Callable[[str], str]
#: Between the German text of a notice and its English copy.
NOTICE_SEPARATOR = "\n\n"


def language_of(language: str | None) -> str:
    """``language`` if citizens can have it, else German."""
    return language if language in LANGUAGES else SOURCE


def po_path(language: str, domain: str = DOMAIN) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


@cache
def catalogue(language: str, domain: str = DOMAIN) -> dict[str, str]:
    """The translated entries of ``language`` (key → text); untranslated and fuzzy
    entries are left out, so they fall back to German."""
    with po_path(language, domain).open("rb") as f:
        parsed = read_po(f, locale=language, domain=domain)
    return {
        str(m.id): str(m.string)
        for m in parsed
        if m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def text(key: str, language: str | None, domain: str = DOMAIN) -> str:
    """The line ``key`` in ``language``, in German where that language lacks it
    (from the catalogue ``domain``: ``citizen`` unless told otherwise)."""
    found = catalogue(language_of(language), domain).get(key)
    return found if found is not None else catalogue(SOURCE, domain)[key]


def say(key: str, language: str | None, **values: Any) -> str:
    """The timeline line ``event.<key>`` in the case's language, placeholders
    filled."""
    return text(f"event.{key}", language).format(**values)


def staff_text(key: str, language: str | None, /, **values: Any) -> str:
    """The staff line ``key`` in ``language`` (German for anything else, and
    where English lacks it), placeholders filled."""
    known = language if language in STAFF_LANGUAGES else SOURCE
    return text(key, known, STAFF_DOMAIN).format(**values)


def staff_line(key: str, /, **values: Any) -> Localized:
    """The staff line ``key`` with its placeholders filled, in whichever
    language it is asked for (a team notice's ``extra``)."""
    return lambda language: staff_text(key, language, **values)


def notice_languages(readers: Iterable[str]) -> tuple[str, ...]:
    """What a notice to several staff (a team or case room) is written in, given
    their languages: always German, then each other staff language one of them
    reads (English), in that order."""
    present = set(readers)
    return (SOURCE, *(x for x in STAFF_LANGUAGES if x != SOURCE and x in present))


def for_readers(
    render: Localized,
    readers: Iterable[str],
    separator: str = NOTICE_SEPARATOR,
) -> str:
    """``render(language)`` for each language of :func:`notice_languages`, joined
    by a blank line: German alone unless a reader has English."""
    return separator.join(render(x) for x in notice_languages(readers))


def section(prefix: str, language: str) -> dict[str, str]:
    """Every line of ``language`` under ``prefix.`` (without the prefix), German
    where it lacks one: what the widget is served."""
    start = prefix + "."
    base = {
        k[len(start) :]: v for k, v in catalogue(SOURCE).items() if k.startswith(start)
    }
    own = {
        k[len(start) :]: v
        for k, v in catalogue(language).items()
        if k.startswith(start)
    }
    return base | own


def language_name(language: str, in_language: str | None = None) -> str:
    """The language's name, in ``in_language`` (its own by default), as CLDR spells
    it: ``language_name("tr", "de")`` is "Türkisch", ``language_name("uk")``
    "Українська"."""
    name = Locale.parse(language).get_display_name(in_language or language) or language
    return name[:1].upper() + name[1:]


def direction(language: str) -> str:
    """``"rtl"`` for right-to-left scripts (Arabic), else ``"ltr"``."""
    return "rtl" if Locale.parse(language).text_direction == "rtl" else "ltr"


def locale_tag(language: str) -> str:
    """The BCP 47 tag dates and numbers are formatted with (``de-DE``, ``en-GB``…)."""
    return {
        "de": "de-DE",
        "en": "en-GB",
        "tr": "tr-TR",
        "ar": "ar",
        "uk": "uk-UA",
        "ru": "ru-RU",
    }.get(language, language)
