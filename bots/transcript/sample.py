"""Made-up cases for tests, the benchmark and a demo transcript.

Names, texts and files are invented; the multilingual lines are what the
rendering must cope with (umlauts, ß, Turkish, Cyrillic, Arabic, CJK, emoji).
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from bots.transcript.model import Attachment, CaseInfo, Entry, SenderKind

START = datetime(2026, 11, 21, 13, 5, tzinfo=UTC)  # 14:05 Uhr in Berlin
LONG_URL = (
    "https://www.musterstadt.de/buergerservice/formulare/meldewesen/"
    "Wohnungsgeberbestaetigung_ausfuellbar_Fassung_2026.pdf?download=1&lang=de"
)
GERMAN = "Grüße aus der Käfertaler Straße, Größe egal, Maß halten, Übergabe öffnen"
TURKISH = "Türkçe: ığüşöç İĞÜŞÖÇ — Kayıt için randevu alabilir miyim?"
CYRILLIC = "Здравствуйте, я хочу зарегистрироваться по новому адресу."
ARABIC = "مرحبا أريد تسجيل عنوان سكني الجديد"
_WORDS = (
    "Guten Tag ich möchte meinen Wohnsitz ummelden und brauche dafür einen "
    "Termin im Bürgerbüro Größe Straße Grüße Öffnungszeiten Personalausweis "
    "Wohnungsgeberbestätigung bitte danke schön gerne natürlich Übergabe"
).split()


def photo(width: int = 1200, height: int = 900) -> bytes:
    """A striped JPEG, recognisable in a thumbnail."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (222, 160, 60))
    draw = ImageDraw.Draw(img)
    for x in range(0, width, 60):
        draw.rectangle((x, 0, x + 20, height), fill=(40, 70, 150))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def image_attachment(
    name: str = "wohnungsgeber.jpg", verdict: str = "clean"
) -> Attachment:
    data = photo()
    digest = hashlib.sha256(data).hexdigest()
    return Attachment(name, len(data), digest, "image/jpeg", verdict, data)


def file_attachment(
    name: str = "Mietvertrag_2026.pdf",
    verdict: str = "clean",
    mimetype: str = "application/pdf",
    size: int = 2_345_678,
) -> Attachment:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return Attachment(name, size, digest, mimetype, verdict)


def case(entries: list[Entry] | None = None, **changes: object) -> CaseInfo:
    """The Musterstadt case BC-2026-000123; `changes` override fields."""
    closed = entries[-1].ts if entries else START + timedelta(minutes=40)
    fields: dict[str, object] = {
        "reference": "BC-2026-000123",
        "department": "Bürgerbüro",
        "topic": "Ummeldung / Wohnsitz",
        "opened_at": START,
        "closed_at": closed,
        "citizen_name": "Ayşe Öztürk-Großmann",
        "staff_names": ("Petra Schmidt", "Jürgen Weiß"),
        "town_name": "Stadt Musterstadt",
        "logo_path": None,
    }
    fields.update(changes)
    return CaseInfo(**fields)  # type: ignore[arg-type]


_VIRUS = file_attachment("virus.exe", "infected", "application/x-msdownload", 73_802)


def conversation() -> list[Entry]:
    """A short case touching every kind of entry and script."""
    at = [START + timedelta(minutes=m) for m in range(20)]
    citizen, staff = "Ayşe Öztürk-Großmann", "Petra Schmidt"
    return [
        Entry(at[0], "system", "Bürgerchat", "Vorgang eröffnet", event_id="$e0"),
        Entry(at[1], "citizen", citizen, f"Guten Tag! {GERMAN}", event_id="$e1"),
        Entry(at[2], "system", "Bürgerchat", f"{staff} hat den Fall übernommen"),
        Entry(at[3], "staff", staff, f"Gerne. Das Formular: {LONG_URL}", None, "$e3"),
        Entry(at[4], "citizen", citizen, TURKISH, event_id="$e4"),
        Entry(at[5], "citizen", citizen, CYRILLIC, event_id="$e5"),
        Entry(at[6], "citizen", citizen, ARABIC, event_id="$e6"),
        Entry(at[7], "citizen", citizen, "", image_attachment(), "$e7"),
        Entry(at[8], "citizen", citizen, "Und der Vertrag:", file_attachment(), "$e8"),
        Entry(at[9], "citizen", citizen, "", _VIRUS),
        Entry(at[10], "system", "Bürgerchat", "Videogespräch gestartet"),
        Entry(at[11], "staff", staff, "Danke, alles erledigt. 中文 😀", None, "$e11"),
        Entry(at[12], "system", "Bürgerchat", "Fall geschlossen"),
    ]


def bulk(count: int, photo_every: int = 200, file_every: int = 50) -> list[Entry]:
    """`count` entries of mixed length, with events, files and photos."""
    jpeg = image_attachment()
    entries: list[Entry] = []
    for i in range(count):
        ts = START + timedelta(seconds=37 * i)
        if i % 25 == 0:
            text = f"Ereignis {i}: an Fachbereich übergeben"
            entries.append(Entry(ts, "system", "Bürgerchat", text))
            continue
        words = 4 + (i * 7919) % 60
        body = " ".join(_WORDS[(i + k) % len(_WORDS)] for k in range(words))
        attachment = None
        if photo_every and i % photo_every == 7:
            attachment = jpeg
        elif file_every and i % file_every == 3:
            attachment = file_attachment(f"antrag-{i}.pdf")
        kind: SenderKind = "citizen" if i % 2 else "staff"
        name = "Ayşe Öztürk-Großmann" if kind == "citizen" else "Jürgen Weiß"
        entries.append(Entry(ts, kind, name, f"{i}: {body}", attachment, f"$e{i}"))
    return entries
