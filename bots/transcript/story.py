"""The transcript's content as a stream of flowables, made one entry at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from bots.transcript import german, layout, text
from bots.transcript.chain import SCHEME, genesis_hash, iter_chain
from bots.transcript.layout import (
    ALERT,
    CITIZEN,
    GREY,
    RULE,
    STAFF,
    Gutter,
    Stack,
    Styles,
    thumbnail,
)
from bots.transcript.model import Attachment, CaseInfo, Entry
from bots.transcript.textblock import TextBlock

_BARS = {"citizen": CITIZEN, "staff": STAFF}
LOGO_MAX_W, LOGO_MAX_H = 55 * mm, 22 * mm


class LazyStory(list[Any]):
    """A flowable list that platypus consumes from the front while a generator
    refills it, so only a few entries are ever held as flowables."""

    def __init__(self, source: Iterator[Flowable], ahead: int = 16) -> None:
        super().__init__()
        self._source: Iterator[Flowable] | None = source
        self._ahead = ahead

    def _fill(self) -> None:
        while self._source is not None and list.__len__(self) < self._ahead:
            try:
                self.append(next(self._source))
            except StopIteration:
                self._source = None

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return list.__getitem__(self, index)


class Story:
    """Builds the flowables of one transcript and computes its hash chain."""

    def __init__(
        self,
        case: CaseInfo,
        entries: Sequence[Entry],
        styles: Styles,
        tz: tzinfo,
        generated_at: datetime,
        content_width: float,
    ) -> None:
        self.case = case
        self.entries = entries
        self.styles = styles
        self.tz = tz
        self.generated_at = generated_at
        self.width = content_width
        self.final_hash = genesis_hash(case.reference)
        self.typesetter = text.Typesetter(styles.fonts.codepoints)

    def _plain(self, value: str) -> str:
        """One-line text (names, file names) as escaped Paragraph markup."""
        return text.markup(self.typesetter.line(value))

    # -- document parts -----------------------------------------------------

    def flowables(self) -> Iterator[Flowable]:
        """Header, timeline and integrity block, in reading order."""
        yield from self._header()
        s = self.styles
        yield Paragraph("Verlauf", s.heading)
        yield HRFlowable(width="100%", thickness=0.6, color=RULE, spaceAfter=4)
        if not self.entries:
            yield Paragraph("Es wurden keine Nachrichten ausgetauscht.", s.body)
        day: date | None = None
        hashes = iter_chain(self.case.reference, self.entries)
        for number, (entry, digest) in enumerate(
            zip(self.entries, hashes, strict=True), start=1
        ):
            self.final_hash = digest
            local_day = entry.ts.astimezone(self.tz).date()
            if local_day != day:
                day = local_day
                heading = Paragraph(german.day_de(entry.ts, self.tz), s.day)
                heading.keepWithNext = 1
                yield heading
            yield from self._entry(entry, number)
        yield from self._closing()

    def _header(self) -> Iterator[Flowable]:
        s, case = self.styles, self.case
        town = Paragraph(self._plain(case.town_name), s.town)
        brand = Paragraph("Bürgerchat · digitale Bürgerkommunikation", s.small)
        logo = (
            layout.logo(case.logo_path, LOGO_MAX_W, LOGO_MAX_H)
            if case.logo_path
            else None
        )
        letterhead = Table(
            [[[town, brand], logo or ""]],
            colWidths=[self.width - LOGO_MAX_W, LOGO_MAX_W],
            style=TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ALIGN", (1, 0), (1, 0), "RIGHT"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ]
            ),
        )
        yield letterhead
        yield HRFlowable(width="100%", thickness=1.2, color=GREY, spaceBefore=4)
        yield Spacer(1, 6 * mm)
        yield Paragraph("Gesprächsprotokoll", s.title)
        yield Paragraph(f"Vorgang {self._plain(case.reference)}", s.heading)
        yield Spacer(1, 3 * mm)
        yield self._facts()
        yield Spacer(1, 2 * mm)

    def _facts(self) -> Table:
        s, case, tz = self.styles, self.case, self.tz
        closed = (
            german.datetime_de(case.closed_at, tz)
            if case.closed_at
            else "noch offen (Zwischenstand)"
        )
        staff = ", ".join(self._plain(n) for n in case.staff_names) or "–"
        rows = [
            ("Vorgangsnummer", self._plain(case.reference)),
            ("Fachbereich", self._plain(case.department)),
            ("Anliegen", self._plain(case.topic) or "ohne Angabe"),
            *((("Ausfertigung", self._plain(case.copy)),) if case.copy else ()),
            ("Eröffnet", german.datetime_de(case.opened_at, tz)),
            ("Abgeschlossen", closed),
            ("Bürger/in", self._plain(case.citizen_name) or "ohne Namensangabe"),
            ("Sachbearbeitung", staff),
            ("Einträge", f"{len(self.entries)}"),
            ("Erstellt", german.datetime_de(self.generated_at, tz)),
        ]
        data = [[Paragraph(k, s.label), Paragraph(v, s.value)] for k, v in rows]
        return Table(
            data,
            colWidths=[38 * mm, self.width - 38 * mm],
            hAlign="LEFT",
            style=TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE),
                ]
            ),
        )

    def _entry(self, entry: Entry, number: int) -> list[Flowable]:
        """An entry's flowables, chained so a page break never splits them
        between the sender line and the text or file that follows."""
        s, ts = self.styles, self.typesetter
        label = german.time_de(entry.ts, self.tz)
        nr = f"Nr. {number}"
        body = ts.body(entry.body)
        bar = _BARS.get(entry.sender_kind)
        if entry.sender_kind == "system":
            block = TextBlock(f"▸ {body}", s.event, ts)
        else:
            style = s.message_tight if entry.attachment else s.message
            head = ts.line(entry.sender_name) or "ohne Namen"
            role = german.SENDER_ROLES[entry.sender_kind]
            block = TextBlock(body, style, ts, head=head, role=role)
        parts: list[Flowable] = [Gutter(block, s, label, nr, bar)]
        if entry.attachment:
            parts[0].keepWithNext = 1
            parts.append(Gutter(self._attachment(entry.attachment), s, bar=bar))
        return parts

    def _attachment(self, att: Attachment) -> Flowable:
        s = self.styles
        verdict = german.verdict_de(att.verdict)
        if att.verdict != "clean":
            verdict = f'<font color="#{ALERT.hexval()[2:]}"><b>{verdict}</b></font>'
        kind = "Bild" if att.is_image else "Datei"
        lines = [
            f"<b>{kind}:</b> {self._plain(att.filename) or 'ohne Dateinamen'}",
            f"{german.size_de(att.size)} · {self._plain(att.mimetype)} · {verdict}",
            f'<font name="{s.fonts.mono}" size="7.5">SHA-256: {att.sha256}</font>',
        ]
        thumb = None
        if att.is_image and att.image is not None:
            if att.verdict == "clean":
                thumb, problem = thumbnail(att.image)
            else:
                problem = "keine Vorschau, da die Virenprüfung nicht unauffällig ist"
            if problem:
                lines.append(f'<font color="#5f6b7a">({problem})</font>')
        caption = Paragraph("<br/>".join(lines), s.attachment)
        return Stack([thumb, caption]) if thumb else caption

    def _closing(self) -> Iterator[Flowable]:
        s = self.styles
        count = len(self.entries)
        explanation = (
            f"Die Einträge dieses Protokolls (Anzahl: {count}) sind über SHA-256 "
            "verkettet, jeder mit dem vorhergehenden (Verfahren "
            f"{SCHEME}, Startwert aus der Vorgangsnummer). Wer die archivierten "
            "Einträge erneut verkettet, muss genau den folgenden Endwert "
            "erhalten; jede nachträgliche Änderung, Auslassung oder Umstellung "
            "eines Eintrags ergibt einen anderen Wert."
        )
        yield Spacer(1, 4 * mm)
        yield Paragraph("– Ende des Protokolls –", s.small_center)
        yield KeepTogether(
            [
                Paragraph("Integritätsnachweis", s.heading),
                HRFlowable(width="100%", thickness=0.6, color=RULE, spaceAfter=4),
                Paragraph(explanation, s.body),
                Paragraph("Endwert der Prüfkette (SHA-256):", s.label),
                Paragraph(self.final_hash, s.hash),
            ]
        )
