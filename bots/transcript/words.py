"""The words and formats of a transcript copy, in the language it is written in.

The town's archive copy is German; the citizen's copy is in the case's language
(``case.language``). Every text comes from the gettext catalogue ``transcript``
(``bridge/i18n/locale/<language>/LC_MESSAGES/transcript.po``): ``pdf.*`` for the
document (headings, labels, footer), ``entry.*`` for the lines the timeline adds
itself (joins, transfers, the close, files not delivered). German dates, times
and sizes are written as they always were (:mod:`bots.transcript.german`), the
other languages' by Babel from CLDR.

The hash chain covers the entries' texts, so the archive copy's entries keep
their German wording from :data:`ARCHIVE_LINES`, frozen here and not read from
the catalogue: an edit of ``de/transcript.po`` must never make an archived
transcript fail ``buergerchat verify-transcript``.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from babel.dates import (
    format_date,
    format_datetime,
    format_time,
    get_date_format,
    get_datetime_format,
    get_time_format,
)
from babel.numbers import format_decimal
from babel.units import format_unit

from bots.transcript import german
from bridge.i18n import SOURCE, direction, language_of, locale_tag
from bridge.i18n import language_name as cldr_name
from bridge.i18n import text as catalogue_text

DOMAIN = "transcript"

#: The archive copy's entry texts (``entry.*``), exactly as archives have always
#: hashed them; the German citizen copy reads the same from the catalogue.
ARCHIVE_LINES = {
    "entry.joined": "{name} ist beigetreten.",
    "entry.claimed": "{name} hat den Fall übernommen.",
    "entry.transferred": "Der Fall wurde an {department} weitergegeben.",
    "entry.transferred_by": "{name} hat den Fall an {department} weitergegeben.",
    "entry.closed": "Der Fall wurde abgeschlossen.",
    "entry.closed_by": "{name} hat den Fall abgeschlossen.",
    "entry.citizen": "Bürger*in",
    "entry.file": "Datei",
    "entry.file_named": "Datei: {name}",
    "entry.no_name": "ohne Namen",
    "entry.not_delivered": "Datei nicht zugestellt ({reason}).",
    "entry.not_delivered_named": "Datei „{name}“ nicht zugestellt ({reason}).",
    "entry.malware": "Schadsoftware: {detail}",
    "entry.rejected": "abgewiesen: {detail}",
    "entry.no_detail": "ohne Angabe",
}

_UNITS = ("kilobyte", "megabyte", "gigabyte", "terabyte", "petabyte")
_RLM = "\u200f"  # right-to-left mark: sets the base direction of a mixed line


class Lines:
    """The texts a copy's timeline adds itself (``entry.*``), which its hash chain
    covers: the archive's frozen German (``language`` None) or the citizen's
    language from the catalogue."""

    def __init__(self, language: str | None = None) -> None:
        self.language = None if language is None else language_of(language)

    def __call__(self, key: str, **values: Any) -> str:
        if self.language is None:
            line = ARCHIVE_LINES[f"entry.{key}"]
        else:
            line = catalogue_text(f"entry.{key}", self.language, DOMAIN)
        return line.format(**values)


ARCHIVE = Lines()


class Words:
    """Labels, dates, times and sizes of a copy written in ``language``."""

    def __init__(self, language: str | None) -> None:
        self.language = language_of(language)
        self.german = self.language == SOURCE
        self.rtl = direction(self.language) == "rtl"
        #: The BCP 47 tag of the PDF's language (``de-DE``, ``ar``…).
        self.tag = locale_tag(self.language)
        self.locale = self.tag.replace("-", "_")

    def __call__(self, key: str, **values: Any) -> str:
        """The document text ``pdf.<key>``, placeholders filled."""
        return catalogue_text(f"pdf.{key}", self.language, DOMAIN).format(**values)

    def directed(self, value: str) -> str:
        """``value`` with the copy's base direction, for a line that mixes an
        Arabic label with Latin names or numbers (the mark is dropped once the
        line is set)."""
        return _RLM + value if self.rtl else value

    def language_name(self, code: str) -> str:
        """A language's name in this copy's language ("Türkisch")."""
        return cldr_name(code, self.language)

    def role(self, kind: str) -> str:
        return self(f"role_{kind}")

    def verdict(self, verdict: str) -> str:
        """The scan verdict as a reader understands it; unknown ones as given."""
        if verdict in german.VERDICTS:
            return self(f"verdict_{verdict}")
        return self("verdict_other", verdict=verdict or self("verdict_unknown"))

    # -- dates, times, sizes ------------------------------------------------

    def date_time(self, value: datetime, tz: tzinfo) -> str:
        """'21.11.2026, 14:05 Uhr', '21 Nov 2026, 14:05' … in the town's zone."""
        if self.german:
            return german.datetime_de(value, tz)
        day = get_date_format("medium", self.locale).pattern
        clock = get_time_format("short", self.locale).pattern
        both = str(get_datetime_format("medium", self.locale))
        pattern = both.replace("{1}", day).replace("{0}", clock)
        return format_datetime(value, pattern, tzinfo=tz, locale=self.locale)

    def time(self, value: datetime, tz: tzinfo) -> str:
        """'14:05' (or as the language writes a time) in the town's zone."""
        if self.german:
            return german.time_de(value, tz)
        return format_time(value, "short", tzinfo=tz, locale=self.locale)

    def day(self, value: datetime, tz: tzinfo) -> str:
        """'Samstag, 21. November 2026', 'Saturday, 21 November 2026' …"""
        if self.german:
            return german.day_de(value, tz)
        return format_date(value.astimezone(tz).date(), "full", locale=self.locale)

    def size(self, size: int) -> str:
        """Decimal units with the exact byte count: '2.3 MB (2,345,678 bytes)'."""
        if self.german:
            return german.size_de(size)
        exact = format_unit(size, "digital-byte", locale=self.locale)
        if size < 1000:
            return exact
        value, unit = size / 1000, 0
        while value >= 999.95 and unit < len(_UNITS) - 1:
            value, unit = value / 1000, unit + 1
        shown = format_unit(
            round(value, 1),
            f"digital-{_UNITS[unit]}",
            length="short",
            format="#,##0.0",
            locale=self.locale,
        )
        return f"{shown} ({exact})"

    def count(self, number: int) -> str:
        """A whole number as the language groups its digits."""
        if self.german:
            return str(number)
        return format_decimal(number, locale=self.locale)
