"""clean_filename turns whatever a browser sends into a safe, honest file name."""

from __future__ import annotations

import unicodedata

import pytest

from bots.scanner.content import KINDS, clean_filename


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\Anna\\Desktop\\Antrag.pdf", "Antrag.pdf"),
        ("/home/anna/Bild.png", "Bild.png"),
    ],
)
def test_paths_are_stripped(raw: str, clean: str) -> None:
    """Only the last path component, Unix or Windows style, is kept."""
    assert clean_filename(raw) == clean


def test_umlauts_are_kept_and_normalised() -> None:
    """German letters survive, and macOS's decomposed form becomes composed."""
    decomposed = unicodedata.normalize("NFD", "Übersicht Müllgebühren ß.pdf")
    assert clean_filename(decomposed) == "Übersicht Müllgebühren ß.pdf"


def test_right_to_left_override_cannot_fake_an_extension() -> None:
    """'Rechnung\\u202egpj.exe' (shown as 'Rechnungexe.jpg') loses the bidi trick."""
    name = clean_filename("Rechnung\u202egpj.exe", KINDS["jpeg"])
    assert "\u202e" not in name
    assert name == "Rechnunggpj.jpg"


def test_control_and_zero_width_characters_are_removed() -> None:
    """Newlines, tabs, NUL and zero-width spaces do not reach the name."""
    assert clean_filename("Bau\x00an\ttrag\n\u200b.pdf") == "Bauantrag.pdf"


def test_characters_windows_forbids_are_replaced() -> None:
    """<>:"|?* become underscores so staff can save the file on Windows."""
    assert clean_filename('Frage?: "ja" <nein>|*.txt') == "Frage__ _ja_ _nein___.txt"


@pytest.mark.parametrize("raw", ["CON.pdf", "nul", "Lpt1.docx", "com9.tar.pdf"])
def test_windows_device_names_are_defused(raw: str) -> None:
    """Reserved device names get a prefix, so they are ordinary files on Windows."""
    assert clean_filename(raw).startswith("_")


def test_hidden_and_dot_only_names_become_visible_or_fallback() -> None:
    """Leading dots are dropped, and a name with nothing left gets 'Anhang'."""
    assert clean_filename(".htaccess") == "htaccess"
    assert clean_filename("...", KINDS["pdf"]) == "Anhang.pdf"
    assert clean_filename("", KINDS["png"]) == "Anhang.png"


def test_extension_follows_the_detected_content() -> None:
    """A JPEG named .png is saved as .jpg; a matching alias is left alone."""
    assert clean_filename("Foto.png", KINDS["jpeg"]) == "Foto.jpg"
    assert clean_filename("Foto.JPEG", KINDS["jpeg"]) == "Foto.JPEG"
    assert clean_filename("Scan", KINDS["pdf"]) == "Scan.pdf"


def test_double_extension_collapses_to_the_real_one() -> None:
    """'rechnung.pdf.exe' that is a PDF becomes 'rechnung.pdf', not '.pdf.pdf'."""
    assert clean_filename("rechnung.pdf.exe", KINDS["pdf"]) == "rechnung.pdf"


def test_long_names_are_cut_in_utf8_bytes_keeping_the_extension() -> None:
    """The result fits max_bytes as UTF-8, ends in the extension, and is valid."""
    name = clean_filename("ä" * 300 + ".docx", KINDS["docx"], max_bytes=100)
    assert name.endswith("ä.docx")
    assert len(name.encode()) <= 100
    assert set(name.removesuffix(".docx")) == {"ä"}


def test_without_detection_the_given_extension_stays() -> None:
    """With no detected type the (cleaned) extension is kept as it is."""
    assert clean_filename("Protokoll 2026.odt") == "Protokoll 2026.odt"
