"""The rendered PDF, read back with pypdf as an archive or a clerk would."""

from __future__ import annotations

import dataclasses
import io
import re
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from bots.transcript import (
    Entry,
    FontMissingError,
    RenderedTranscript,
    final_hash,
    genesis_hash,
    render_pdf,
    sample,
    stored_final_hash,
    verify,
)
from bots.transcript.fonts import load_fonts

GENERATED = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)


def _render(
    entries: list[Entry], **case_changes: object
) -> tuple[RenderedTranscript, PdfReader, list[str]]:
    case = sample.case(entries, **case_changes)
    result = render_pdf(case, entries, generated_at=GENERATED)
    reader = PdfReader(io.BytesIO(result.pdf))
    return result, reader, [page.extract_text() for page in reader.pages]


def _flat(texts: list[str]) -> str:
    """All pages as one string with whitespace runs folded to one space."""
    return re.sub(r"\s+", " ", " ".join(texts))


@pytest.fixture(scope="module")
def conversation() -> tuple[RenderedTranscript, PdfReader, list[str]]:
    return _render(sample.conversation())


@pytest.fixture(scope="module")
def long_case() -> tuple[RenderedTranscript, PdfReader, list[str]]:
    return _render(sample.bulk(400))


def test_header_states_town_case_participants_and_berlin_times(conversation) -> None:
    """Page 1 names town, reference, department, topic, people; times in Berlin."""
    first = conversation[2][0]
    for expected in (
        "Stadt Musterstadt",
        "Gesprächsprotokoll",
        "BC-2026-000123",
        "Bürgerbüro",
        "Ummeldung / Wohnsitz",
        "Ayşe Öztürk-Großmann",
        "Petra Schmidt, Jürgen Weiß",
        "21.11.2026, 14:05 Uhr",  # opened 13:05 UTC, CET
        "21.11.2026, 14:17 Uhr",  # closed
        "21.11.2026, 15:00 Uhr",  # generated
    ):
        assert expected in first, expected


def test_case_without_topic_says_so_in_header_and_subject() -> None:
    """No topic chosen: the header reads "ohne Angabe", the subject has no colon."""
    entries = [Entry(sample.START, "citizen", "A", "Hallo")]
    _, reader, texts = _render(entries, topic="")
    assert "Anliegen ohne Angabe" in _flat(texts[:1])
    assert reader.metadata is not None
    assert reader.metadata.subject == "Bürgerchat – Bürgerbüro"


def test_summer_times_are_shown_in_central_european_summer_time() -> None:
    """A July case opened 12:00 UTC reads 14:00 Uhr (UTC+2)."""
    july = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    entries = [Entry(july, "citizen", "A", "Hallo")]
    _, _, texts = _render(entries, opened_at=july, closed_at=None)
    assert "01.07.2026, 14:00 Uhr" in texts[0]
    assert "noch offen" in texts[0]


def test_timeline_keeps_order_sender_and_local_time(long_case) -> None:
    """Every message appears once, in order, after its sender line."""
    text = "\n".join(long_case[2])
    numbers = [int(n) for n in re.findall(r"^(\d+): ", text, re.M)]
    expected = [i for i in range(400) if i % 25]
    assert numbers == expected
    assert "Jürgen Weiß Verwaltung" in _flat(long_case[2])
    assert "Ayşe Öztürk-Großmann Bürger/in" in _flat(long_case[2])


def test_entries_show_time_and_number(conversation) -> None:
    """Each entry carries its Berlin time and running number for citation."""
    flat = _flat(conversation[2])
    assert re.search(r"Nr\. 5 14:09 .*Türkçe", flat)
    assert "Nr. 13" in flat and "Nr. 14" not in flat


def test_every_page_is_numbered_seite_x_von_n(long_case) -> None:
    """Each page's footer reads 'Seite i von N' with N the real page count."""
    result, reader, texts = long_case
    total = len(reader.pages)
    assert total > 5
    assert result.pages == total
    for number, text in enumerate(texts, start=1):
        assert f"Seite {number} von {total}" in text


def test_day_changes_get_a_german_date_heading() -> None:
    """Entries past midnight Berlin time get a new weekday heading."""
    late = datetime(2026, 11, 21, 22, 50, tzinfo=UTC)  # 23:50 in Berlin
    entries = [
        Entry(late, "citizen", "A", "Noch da?"),
        Entry(late + timedelta(minutes=20), "staff", "B", "Ja."),
    ]
    flat = _flat(_render(entries)[2])
    assert "Samstag, 21. November 2026" in flat
    assert "Sonntag, 22. November 2026" in flat
    assert flat.index("Noch da?") < flat.index("Sonntag") < flat.index("Ja.")


def test_metadata_names_title_author_subject_and_creation_date(conversation) -> None:
    """PDF info: title with reference, town as author, topic, generation time."""
    result, reader, _ = conversation
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "Gesprächsprotokoll BC-2026-000123"
    assert meta.author == "Stadt Musterstadt"
    assert meta.subject == "Bürgerchat – Bürgerbüro: Ummeldung / Wohnsitz"
    assert meta.creator == "Bürgerchat"
    assert meta.creation_date == GENERATED
    assert meta.get("/Keywords") == (
        f"buergerchat-transcript-v1 sha256-chain:{result.final_hash}"
    )


def test_final_hash_is_printed_on_the_last_page_and_matches_the_chain(
    long_case,
) -> None:
    """The last page shows the chain's final value, computed independently."""
    result, _, texts = long_case
    entries = sample.bulk(400)
    expected = final_hash(sample.case(entries), entries)
    assert result.final_hash == expected
    assert expected in texts[-1].replace("\n", "")
    assert all(expected not in t for t in texts[:-1])


def test_stored_hash_is_read_back_from_the_pdf_for_verification(conversation) -> None:
    """stored_final_hash() finds the chain value, and verify() accepts it."""
    result = conversation[0]
    entries = sample.conversation()
    stored = stored_final_hash(result.pdf)
    assert stored is not None and stored == result.final_hash
    assert verify(sample.case(entries), entries, stored)
    assert stored_final_hash(b"%PDF-1.4 nothing here") is None


def test_tampered_entry_renders_a_different_final_hash() -> None:
    """Changing one message changes the hash printed in the PDF."""
    entries = sample.conversation()
    original = _render(entries)[0].final_hash
    tampered = list(entries)
    tampered[1] = dataclasses.replace(entries[1], body="Anderer Text")
    result, _, texts = _render(tampered)
    assert result.final_hash != original
    assert result.final_hash in texts[-1] and original not in "".join(texts)


def test_german_turkish_and_cyrillic_text_is_extractable(conversation) -> None:
    """Umlauts, ß, Turkish ğış/İ and Cyrillic come back out of the PDF verbatim."""
    flat = _flat(conversation[2])
    assert sample.GERMAN in flat
    assert sample.TURKISH in flat
    assert sample.CYRILLIC in flat


def test_arabic_is_shaped_and_set_right_to_left(conversation) -> None:
    """Arabic is drawn as joined letter forms in visual order, and extracts back.

    pypdf reverses right-to-left runs when extracting, so getting the logical
    sentence back proves the glyphs were laid out right to left.
    """
    lines = [line.strip() for t in conversation[2] for line in t.splitlines()]
    arabic = [ln for ln in lines if any("\ufe70" <= ch <= "\ufeff" for ch in ln)]
    assert len(arabic) == 1
    assert unicodedata.normalize("NFKC", arabic[0]) == sample.ARABIC


def test_characters_without_glyph_are_shown_as_code_points(conversation) -> None:
    """CJK and emoji outside the font print as [U+....], never vanish."""
    flat = _flat(conversation[2])
    assert "[U+4E2D U+6587]" in flat
    assert "[U+1F600]" in flat


def test_long_url_wraps_at_its_slashes_inside_the_column(conversation) -> None:
    """A URL wider than the column is broken after a '/', not clipped."""
    lines = [ln.strip() for t in conversation[2] for ln in t.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("https://"))
    assert lines[start].endswith("/")
    assert lines[start] + lines[start + 1] == sample.LONG_URL


def test_clean_image_is_embedded_as_a_small_thumbnail(conversation) -> None:
    """The photo appears as an embedded image no larger than 420 px."""
    images = [img for page in conversation[1].pages for img in page.images]
    assert len(images) == 1
    width, height = images[0].image.size
    assert max(width, height) <= 420
    assert "Bild: wohnungsgeber.jpg" in _flat(conversation[2])


def test_image_not_scanned_clean_gets_no_thumbnail() -> None:
    """An infected or pending image is listed but never decoded or shown."""
    entry = Entry(
        sample.START, "citizen", "A", "", sample.image_attachment("x.jpg", "pending")
    )
    _, reader, texts = _render([entry])
    assert sum(len(page.images) for page in reader.pages) == 0
    flat = _flat(texts)
    assert "Virenprüfung: noch nicht abgeschlossen" in flat
    assert "keine Vorschau" in flat


def test_broken_image_bytes_do_not_stop_the_transcript() -> None:
    """Undecodable image data is reported in the document instead of raising."""
    att = dataclasses.replace(sample.image_attachment(), image=b"not a jpeg")
    _, _, texts = _render([Entry(sample.START, "citizen", "A", "", att)])
    assert "Vorschau konnte nicht erzeugt werden" in _flat(texts)


def test_attachments_list_name_size_sha256_and_verdict(conversation) -> None:
    """Files show name, human size with exact bytes, SHA-256 and scan verdict."""
    flat = _flat(conversation[2])
    contract = sample.file_attachment()
    assert (
        f"Datei: Mietvertrag_2026.pdf 2,3 MB (2.345.678 Bytes) · application/pdf · "
        f"Virenprüfung: unauffällig SHA-256: {contract.sha256}"
    ) in flat
    assert "Datei: virus.exe 73,8 kB (73.802 Bytes)" in flat
    assert "Schadsoftware gefunden" in flat


def _fonts_of(reader: PdfReader, needle: str) -> set[str]:
    found: set[str] = set()

    def visit(text: str, cm: object, tm: object, font: object, size: object) -> None:
        if needle in text and font is not None:
            found.add(str(font["/BaseFont"]))  # type: ignore[index]

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    return found


def test_system_events_are_set_in_italics_unlike_messages(conversation) -> None:
    """'Videogespräch gestartet' uses the oblique face; messages do not."""
    reader = conversation[1]
    event_fonts = _fonts_of(reader, "Videogespräch gestartet")
    message_fonts = _fonts_of(reader, "Здравствуйте")
    assert event_fonts and all("Oblique" in f for f in event_fonts)
    assert message_fonts and not any("Oblique" in f for f in message_fonts)


def test_a_message_longer_than_a_page_continues_on_the_next() -> None:
    """A 300-line message starts on page 1, continues marked 'Forts.', in order."""
    body = "\n".join(f"Zeile {i:03d}" for i in range(300))
    result, _, texts = _render([Entry(sample.START, "citizen", "A", body)])
    assert result.pages >= 4
    found = re.findall(r"Zeile (\d{3})", "\n".join(texts))
    assert [int(n) for n in found] == list(range(300))
    assert "Zeile 000" in texts[0]
    continued = [t for t in texts[1:] if "Zeile" in t]
    assert continued and all("Nr. 1 Forts." in t for t in continued)


def test_a_flood_of_empty_lines_is_folded_to_one_blank_line() -> None:
    """5,000 newlines in a message cost one blank line, not a hundred pages."""
    body = "Anfang" + "\n" * 5000 + "Ende\u2028neue Zeile"
    result, _, texts = _render([Entry(sample.START, "citizen", "A", body)])
    assert result.pages == 1
    assert re.search(r"Anfang\n+Ende\nneue Zeile", texts[0])


def test_concurrent_renders_in_threads_give_identical_documents() -> None:
    """Two renders at once (as asyncio.to_thread may run them) do not interfere."""
    from concurrent.futures import ThreadPoolExecutor

    entries = sample.bulk(150)
    case = sample.case(entries)

    def run(_: int) -> RenderedTranscript:
        return render_pdf(case, entries, generated_at=GENERATED)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, range(3)))
    texts = [
        [p.extract_text() for p in PdfReader(io.BytesIO(r.pdf)).pages] for r in results
    ]
    assert texts[0] == texts[1] == texts[2]
    assert len({r.final_hash for r in results}) == 1


def test_case_without_entries_says_so_and_prints_the_genesis_hash() -> None:
    """No messages: a clear sentence, and the chain value is the genesis hash."""
    result, _, texts = _render([])
    assert "Es wurden keine Nachrichten ausgetauscht." in _flat(texts)
    assert result.final_hash == genesis_hash("BC-2026-000123")
    assert result.final_hash in texts[-1]


def test_logo_is_drawn_and_a_missing_logo_is_left_out(tmp_path) -> None:
    """A configured PNG logo is embedded; an unreadable path costs only the logo."""
    from PIL import Image

    logo = tmp_path / "wappen.png"
    Image.new("RGBA", (200, 240), (180, 20, 30, 255)).save(logo)
    entries = [Entry(sample.START, "citizen", "A", "Hallo")]
    _, reader, _ = _render(entries, logo_path=str(logo))
    assert len(reader.pages[0].images) == 1
    _, reader, texts = _render(entries, logo_path=str(tmp_path / "fehlt.png"))
    assert len(reader.pages[0].images) == 0
    assert "Hallo" in texts[0]


def test_missing_font_names_the_path_and_the_debian_package(tmp_path) -> None:
    """Without DejaVu the error says which file is missing and what to install."""
    with pytest.raises(FontMissingError) as caught:
        load_fonts(str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path / "DejaVuSans.ttf") in message
    assert "fonts-dejavu-core" in message
    entries = sample.conversation()
    with pytest.raises(FontMissingError):
        render_pdf(sample.case(entries), entries, font_dir=str(tmp_path))


def test_unknown_time_zone_is_a_clear_error() -> None:
    """A misspelt zone names the field instead of failing deep in rendering."""
    entries = sample.conversation()
    with pytest.raises(ValueError, match="CaseInfo.timezone"):
        render_pdf(sample.case(entries, timezone="Europe/Berln"), entries)
