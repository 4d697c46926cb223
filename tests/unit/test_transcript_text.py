"""Text preparation and German formats used on transcript pages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from bots.transcript import german, text
from bots.transcript.fonts import load_fonts

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def typesetter() -> text.Typesetter:
    return text.Typesetter(load_fonts().codepoints)


def _measure(value: str) -> float:
    return float(stringWidth(value, load_fonts().regular, 9.5))


def test_datetime_is_german_format_in_berlin_winter_and_summer() -> None:
    """UTC instants read as local Berlin time with 'Uhr', across DST."""
    assert german.datetime_de(datetime(2026, 11, 21, 13, 5, tzinfo=UTC), BERLIN) == (
        "21.11.2026, 14:05 Uhr"
    )
    assert german.datetime_de(datetime(2026, 7, 1, 22, 30, tzinfo=UTC), BERLIN) == (
        "02.07.2026, 00:30 Uhr"
    )


def test_day_heading_uses_german_weekday_and_month() -> None:
    """Day headings do not depend on the process locale."""
    assert german.day_de(datetime(2026, 3, 2, 8, tzinfo=UTC), BERLIN) == (
        "Montag, 2. März 2026"
    )


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 Bytes"),
        (1, "1 Byte"),
        (999, "999 Bytes"),
        (1000, "1,0 kB (1.000 Bytes)"),
        (2_345_678, "2,3 MB (2.345.678 Bytes)"),
        (999_960, "1,0 MB (999.960 Bytes)"),
        (5 * 10**9, "5,0 GB (5.000.000.000 Bytes)"),
    ],
)
def test_sizes_are_decimal_units_with_the_exact_byte_count(
    size: int, shown: str
) -> None:
    """Sizes use a decimal comma and keep the exact count for checking."""
    assert german.size_de(size) == shown


def test_unknown_verdict_is_shown_as_given() -> None:
    """A verdict the renderer does not know is not silently called clean."""
    assert german.verdict_de("clean") == "Virenprüfung: unauffällig"
    assert german.verdict_de("error") == "Virenprüfung: error"


def test_missing_glyphs_become_code_points_and_invisibles_vanish(typesetter) -> None:
    """Unprintable characters are named; NUL, soft hyphens, joiners are dropped."""
    shown = typesetter.clean("a\x00b\x07 中文 Bürger\u00adbüro\r\ny 👍🏽\u200d")
    assert shown == "ab [U+4E2D U+6587] Bürgerbüro\ny [U+1F44D U+1F3FD]"


def test_direction_controls_are_applied_then_removed(typesetter) -> None:
    """An RTL override reorders the text as a chat client would, leaving no trace."""
    line = typesetter.line("Ende: \u202eABC\u202c.")
    assert line == "Ende: CBA."


def test_plain_german_text_passes_unchanged(typesetter) -> None:
    """Text the font covers is not altered on its way to the page."""
    sample = "Straße, Größe, Übergabe – „Grüße“ € 12,50"
    assert typesetter.clean(sample) == sample


def test_wrapped_lines_fit_the_width_and_keep_every_character() -> None:
    """Word wrap never exceeds the width and loses nothing but break spaces."""
    source = (
        "Sehr geehrte Damen und Herren, "
        + "Donaudampfschifffahrtsgesellschaftskapitänsmütze" * 4
        + " https://www.example.org/a/very/long/path/with/many/segments/file.pdf "
        "und Schluss."
    )
    lines = text.wrap_words(source, 180.0, _measure)
    assert len(lines) > 3
    assert all(_measure(line) <= 180.0 for line in lines)
    assert "".join(lines).replace(" ", "") == source.replace(" ", "")


def test_long_url_breaks_after_a_separator() -> None:
    """A URL is cut after '/', '?' or similar, not mid-word, where possible."""
    url = "https://www.musterstadt.de/buergerservice/formulare/meldewesen/antrag.pdf"
    lines = text.wrap_words(url, 200.0, _measure)
    assert len(lines) >= 2
    assert all(line[-1] in "/-?&=_.,;:" for line in lines[:-1])
    assert "".join(lines) == url


def test_rtl_paragraph_keeps_line_order_and_reverses_within_lines(typesetter) -> None:
    """The first visual line holds the first words; each line reads right to left."""
    words = ["كلمة" + str(i) for i in range(12)]
    lines, rtl = typesetter.lines(" ".join(words), 120.0, load_fonts().regular, 9.5)
    assert rtl and len(lines) > 1
    assert "0" in lines[0] and "11" in lines[-1]
    assert all(_measure(line) <= 120.0 for line in lines)


def test_ltr_text_with_an_arabic_word_stays_left_to_right(typesetter) -> None:
    """A German sentence quoting an Arabic name keeps its direction."""
    lines, rtl = typesetter.lines("Name: مرحبا Ende", 400.0, load_fonts().regular, 9.5)
    assert not rtl
    assert lines[0].startswith("Name: ") and lines[0].endswith(" Ende")
