"""The citizen's copy of a transcript in the case's language; the town's archive
copy in German, naming the citizen's language, with the same hash chain as ever."""

from __future__ import annotations

import gettext
import hashlib
import io
import re
import string
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

from bots.transcript import final_hash, german, render_pdf, stored_final_hash, text
from bots.transcript.fonts import load_fonts
from bots.transcript.model import Entry, RenderedTranscript
from bots.transcript.records import CaseRecords, FileRecord, SystemRecord
from bots.transcript.timeline import CITIZEN_COPY, case_info, entries_from_events
from bots.transcript.words import ARCHIVE_LINES, DOMAIN, Lines, Words
from bridge import i18n
from bridge.config import Config, load_config
from bridge.db.models import Case

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = i18n.LANGUAGES
BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # 10:00 in Berlin, a Thursday
GENERATED = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
REFERENCE = "BC-2026-000042"
BOT = "@buergerchat:buergerchat.localhost"
GHOST = "@bc_eva:buergerchat.localhost"
ANNA = "@anna.schmidt:buergerchat.localhost"
BERND = "@bernd.keller:buergerchat.localhost"
PLAN = hashlib.sha256(b"Plan").hexdigest()
VIRUS = hashlib.sha256(b"Virus").hexdigest()

#: The day heading and the opening time, as each language writes them.
DAY = {
    "de": "Donnerstag, 19. November 2026",
    "en": "Thursday, 19 November 2026",
    "tr": "19 Kasım 2026 Perşembe",
    "ar": "الخميس، 19 نوفمبر 2026",
    "uk": "четвер, 19 листопада 2026 р.",
    "ru": "четверг, 19 ноября 2026 г.",
}
OPENED = {
    "de": "19.11.2026, 10:00 Uhr",
    "en": "19 Nov 2026, 10:00",
    "tr": "19 Kas 2026 10:00",
    "uk": "19 лист. 2026 р., 10:00",
    "ru": "19 нояб. 2026 г., 10:00",
}
#: German words of the document that no other language's copy may show.
GERMAN_WORDS = (
    "Gesprächsprotokoll",
    "Vorgang",
    "Seite",
    "Nr.",
    "Uhr",
    "Virenprüfung",
    "beigetreten",
    "übernommen",
    "weitergegeben",
    "abgeschlossen",
    "zugestellt",
    "Schadsoftware",
    "Donnerstag",
    "19. November",
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(REPO / "config", tmp_path_factory.mktemp("data"))


def case(language: str) -> Case:
    return Case(
        case_id="c1",
        reference=REFERENCE,
        department="buergerbuero",
        topic="bauantrag",
        state="closed",
        language=language,
        citizen_name="Eva Muster",
        ghost_mxid=GHOST,
        room_id="!room:buergerchat.localhost",
        created_at=T0,
        closed_at=at(10),
    )


def _event(minutes: float, sender: str, content: dict[str, Any], **more: Any) -> Any:
    return {
        "event_id": f"$e{minutes}",
        "type": more.pop("type", "m.room.message"),
        "sender": sender,
        "origin_server_ts": int(at(minutes).timestamp() * 1000),
        "content": content,
        **more,
    }


def _said(minutes: float, sender: str, body: str) -> Any:
    return _event(minutes, sender, {"msgtype": "m.text", "body": body})


EVENTS = [
    _said(1, GHOST, "Hello? Merhaba? مرحبا"),
    _event(
        1.5,
        ANNA,
        {"membership": "join", "displayname": "Anna Schmidt"},
        type="m.room.member",
        state_key=ANNA,
    ),
    _said(2, ANNA, "!claim"),
    _said(2.5, ANNA, "OK."),
    _said(3, ANNA, "!transfer bauen internal remark"),
    _event(
        4,
        GHOST,
        {
            "msgtype": "m.file",
            "body": "Plan.pdf",
            "url": "mxc://buergerchat.localhost/plan",
            "info": {"mimetype": "application/pdf", "size": 68},
            "de.buergerchat.scan": {"verdict": "clean", "sha256": PLAN},
        },
    ),
    _said(9, BERND, "!close internal remark"),
]
RECORDS = CaseRecords(
    system=(
        SystemRecord(
            at(2.01), "claimed", "x", {"kind": "claimed", "staff_name": "Anna Schmidt"}
        ),
        SystemRecord(
            at(3.01), "transferred", "x", {"kind": "transferred", "department": "bauen"}
        ),
    ),
    files=(
        FileRecord(
            at(5),
            at(5.1),
            "citizen",
            None,
            "virus.exe",
            "application/x-msdownload",
            5,
            VIRUS,
            "infected",
            None,
            "Eicar",
        ),
    ),
)


def copy_of(config: Config, language: str, internal: bool) -> tuple[Any, list[Entry]]:
    the_case = case(language)
    entries = entries_from_events(
        EVENTS, config=config, case=the_case, records=RECORDS, internal=internal
    )
    return case_info(config, the_case, entries, internal), entries


class Copy:
    """A rendered copy read back as a clerk's PDF reader would."""

    def __init__(self, config: Config, language: str, internal: bool) -> None:
        self.info, self.entries = copy_of(config, language, internal)
        self.result: RenderedTranscript = render_pdf(
            self.info, self.entries, generated_at=GENERATED
        )
        self.reader = PdfReader(io.BytesIO(self.result.pdf))
        self.pages = [page.extract_text() for page in self.reader.pages]
        self.flat = flat("\n".join(self.pages))


def flat(value: str) -> str:
    """Whitespace runs (also no-break and narrow spaces) folded to one space."""
    return re.sub(r"\s+", " ", value)


@pytest.fixture(scope="module")
def copies(config: Config) -> dict[tuple[str, bool], Copy]:
    return {
        (language, internal): Copy(config, language, internal)
        for language in LANGUAGES
        for internal in (False, True)
        if not internal or language in ("de", "tr")
    }


# --- the citizen's copy -------------------------------------------------------


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "ar"])
def test_citizen_copy_heading_labels_and_lines_are_in_the_case_language(
    copies: dict[tuple[str, bool], Copy], language: str
) -> None:
    copy = copies[language, False]
    w, lines = Words(language), Lines(language)
    expected = [
        w("heading"),
        w("case", reference=REFERENCE),
        w("reference"),
        w("department"),
        w("topic"),
        w("copy"),
        w("copy_citizen"),
        w("opened"),
        w("closed"),
        w("staff"),
        w("created"),
        w("timeline"),
        w("number", number=1),
        w("integrity"),
        w("final_value"),
        w("end"),
        w("page", number=1, total=copy.result.pages),
        f"{w('file')}: Plan.pdf",
        w.size(68),
        w.verdict("clean"),
        lines("joined", name="Anna Schmidt"),
        lines("claimed", name="Anna Schmidt"),
        lines("transferred_by", name="Anna Schmidt", department="Bauen und Wohnen"),
        lines("not_delivered", reason=lines("malware", detail="Eicar")),
        lines("closed_by", name="Bernd Keller"),
        w.role("citizen"),
        w.role("staff"),
    ]
    missing = [e for e in expected if flat(e) not in copy.flat]
    assert missing == []
    assert "internal remark" not in copy.flat
    assert "[U+" not in copy.flat  # every character had a glyph
    meta = copy.reader.metadata
    assert meta is not None and meta.title == w("title", reference=REFERENCE)
    assert copy.reader.trailer["/Root"]["/Lang"] == i18n.locale_tag(language)


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "ar"])
def test_citizen_copy_dates_are_written_as_the_language_writes_them(
    copies: dict[tuple[str, bool], Copy], language: str
) -> None:
    copy = copies[language, False]
    assert flat(DAY[language]) in copy.flat
    assert flat(OPENED[language]) in copy.flat
    assert flat(Words(language).date_time(GENERATED, BERLIN)) in copy.flat


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "de"])
def test_no_german_label_remains_in_another_language(
    copies: dict[tuple[str, bool], Copy], language: str
) -> None:
    copy = copies[language, False]
    german_texts = i18n.catalogue("de", DOMAIN)
    own = i18n.catalogue(language, DOMAIN)
    labels = [
        v
        for k, v in german_texts.items()
        if "{" not in v and v != own[k] and len(v) > 3
    ]
    found = [v for v in labels if v in copy.flat]
    found += [x for x in GERMAN_WORDS if re.search(rf"\b{re.escape(x)}", copy.flat)]
    assert found == []


def test_arabic_copy_is_shaped_and_set_right_to_left(
    copies: dict[tuple[str, bool], Copy],
) -> None:
    """Labels are drawn as joined Arabic letter forms (pypdf gives them back in
    reading order once normalised), flush right, and named in the metadata."""
    copy = copies["ar", False]
    w = Words("ar")
    meta = copy.reader.metadata
    assert meta is not None
    assert meta.title == "محضر المحادثة BC-2026-000042"
    assert copy.reader.trailer["/Root"]["/Lang"] == "ar"
    shaped = unicodedata.normalize("NFKC", copy.flat)
    for label in ("heading", "timeline", "reference", "opened", "integrity"):
        assert w(label) in shaped, label
    # Lines mixing Arabic with names, numbers and dates: every word is there.
    for line in (
        DAY["ar"],
        w.date_time(T0, BERLIN),
        w("page", number=1, total=copy.result.pages),
        Lines("ar")("closed_by", name="Bernd Keller"),
        Lines("ar")(
            "transferred_by", name="Anna Schmidt", department="Bauen und Wohnen"
        ),
    ):
        words = re.findall(r"[^\s/،.\u200f]+", line)
        assert [x for x in words if x not in shaped] == [], line
    assert "[U+" not in copy.flat
    heading = _drawn(copy.reader, w("heading"))
    assert heading and min(heading) > 300  # starts right of the page's middle
    assert _drawn(copies["de", False].reader, "Gesprächsprotokoll") == [
        pytest.approx(70.87, abs=0.1)  # the left margin, 25 mm
    ]


def _drawn(reader: PdfReader, needle: str) -> list[float]:
    """Where on the first page the text `needle` starts (x, points); shaped
    Arabic is compared in its normalised letters."""
    found: list[float] = []

    def visit(value: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if unicodedata.normalize("NFKC", value).strip() == needle:
            found.append(float(tm[4]) * float(cm[0]) + float(cm[4]))

    reader.pages[0].extract_text(visitor_text=visit)
    return found


def test_arabic_brackets_are_mirrored_in_right_to_left_lines() -> None:
    """A right-to-left line draws its closing bracket at its left end."""
    typesetter = text.Typesetter(load_fonts().codepoints)
    shown = typesetter.line("\u200fنسخة (دون ملاحظات)")
    assert shown[0] == "(" and ")" in shown[1:]
    assert typesetter.line("Name (Notiz)") == "Name (Notiz)"


def test_citizen_copy_chain_is_what_verify_transcript_recomputes(
    copies: dict[tuple[str, bool], Copy], config: Config
) -> None:
    """verify-transcript rebuilds the citizen's entries from the same events (in
    the case's language) and gets the hash the download carries."""
    for language in LANGUAGES:
        copy = copies[language, False]
        info, entries = copy_of(config, language, internal=False)
        assert stored_final_hash(copy.result.pdf) == final_hash(info, entries)
    hashes = {copies[x, False].result.final_hash for x in LANGUAGES}
    assert len(hashes) == len(LANGUAGES)  # each copy chains its own words


# --- the town's archive copy ---------------------------------------------------


def test_archive_copy_is_german_and_names_the_citizens_language(
    copies: dict[tuple[str, bool], Copy],
) -> None:
    turkish, german_case = copies["tr", True], copies["de", True]
    for copy in (turkish, german_case):
        assert "Gesprächsprotokoll" in copy.flat
        assert "Archiv der Verwaltung" in copy.flat
        assert "Donnerstag, 19. November 2026" in copy.flat
        assert "Anna Schmidt hat den Fall an Bauen und Wohnen weitergegeben." in (
            copy.flat
        )
        assert "Notiz: internal remark" in copy.flat
        assert "Görüşme" not in copy.flat and "Başvuru" not in copy.flat
    assert re.search(r"Sprache\s+Türkisch", turkish.flat)
    assert "Sprache" not in german_case.flat


def test_archive_chain_does_not_depend_on_the_case_language(
    copies: dict[tuple[str, bool], Copy], config: Config
) -> None:
    """The archive's hashed content stays German whatever the citizen's
    language, so archives verify as before."""
    archives = [copy_of(config, x, internal=True)[1] for x in LANGUAGES]
    assert all(entries == archives[0] for entries in archives)
    assert copies["tr", True].result.final_hash == copies["de", True].result.final_hash
    texts = [e.body for e in archives[0]]
    assert "Anna Schmidt ist beigetreten." in texts
    assert "Datei nicht zugestellt (Schadsoftware: Eicar)." in texts


def test_german_citizen_copy_keeps_its_wording() -> None:
    """German is the source: the citizen's German copy says what it always
    said, so the catalogue's German must match the archive's frozen lines."""
    german_texts = i18n.catalogue("de", DOMAIN)
    assert {k: german_texts[k] for k in ARCHIVE_LINES} == ARCHIVE_LINES
    assert german_texts["pdf.copy_citizen"] == CITIZEN_COPY
    for verdict, shown in german.VERDICTS.items():
        assert Words("de").verdict(verdict) == shown
    for kind, role in german.SENDER_ROLES.items():
        assert Words("de").role(kind) == role


# --- the catalogues -------------------------------------------------------------


def _fields(value: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(value) if name)


def _parsed(language: str) -> Any:
    with i18n.po_path(language, DOMAIN).open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_transcript_catalogue_has_the_german_keys_and_placeholders(
    language: str,
) -> None:
    source, parsed = _parsed("de"), _parsed(language)
    keys = sorted(str(m.id) for m in source if m.id)
    assert sorted(str(m.id) for m in parsed if m.id) == keys
    german_texts, own = i18n.catalogue("de", DOMAIN), i18n.catalogue(language, DOMAIN)
    assert sorted(own) == keys  # none untranslated or fuzzy
    wrong = [k for k in keys if _fields(german_texts[k]) != _fields(own[k])]
    assert wrong == []
    assert [k for k, v in own.items() if not v or v.strip() != v] == []
    assert str(parsed.locale) == language
    cldr = get_plural(language)
    assert parsed.num_plurals == cldr.num_plurals
    ours, theirs = gettext.c2py(parsed.plural_expr), gettext.c2py(cldr.plural_expr)
    assert [ours(n) for n in range(1000)] == [theirs(n) for n in range(1000)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_character_of_the_translations_has_a_glyph(language: str) -> None:
    """Regular and bold faces (labels, headings) draw every character, also the
    shaped Arabic forms; nothing would print as a [U+....] placeholder."""
    fonts = load_fonts()
    typesetter = text.Typesetter(fonts.codepoints)
    bold = pdfmetrics.getFont(fonts.bold).face.charToGlyph
    sample = i18n.catalogue(language, DOMAIN).values()
    w = Words(language)
    dates = [w.date_time(T0, BERLIN), w.day(T0, BERLIN), w.size(2_345_678)]
    for value in [*sample, *dates]:
        shown = typesetter.line(w.directed(value))
        assert "[U+" not in shown, value
        assert [c for c in shown if ord(c) not in bold] == [], value
