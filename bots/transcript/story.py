"""The transcript's content as a stream of flowables, made one entry at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, tzinfo
from typing import Any

from reportlab.lib.styles import ParagraphStyle
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

from bots.transcript import layout, text
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
from bots.transcript.words import Words

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
    """Builds the flowables of one transcript and computes its hash chain.

    Written in the copy's language (``case.language``, see :class:`Words`);
    a right-to-left copy (Arabic) has its labels shaped and set flush right."""

    def __init__(
        self,
        case: CaseInfo,
        entries: Sequence[Entry],
        styles: Styles,
        tz: tzinfo,
        generated_at: datetime,
        content_width: float,
        words: Words | None = None,
    ) -> None:
        self.case = case
        self.entries = entries
        self.words = words or Words(case.language)
        self.styles = layout.right_to_left(styles) if self.words.rtl else styles
        # The oblique faces lack Arabic letters: such system lines stay upright.
        self.upright = replace(self.styles.event, font=styles.fonts.regular)
        self.tz = tz
        self.generated_at = generated_at
        self.width = content_width
        self.final_hash = genesis_hash(case.reference)
        self.typesetter = text.Typesetter(styles.fonts.codepoints)

    def line(self, value: str) -> str:
        """One line (a label, a name) ready to draw: shaped and in drawing
        order, with the copy's base direction."""
        return self.typesetter.line(self.words.directed(value))

    def _plain(self, value: str) -> str:
        """One line of text as escaped Paragraph markup."""
        return text.markup(self.line(value))

    def _text(self, value: str, style: ParagraphStyle) -> Flowable:
        """Plain text in `style`; right-to-left text is wrapped before it is
        reordered (a TextBlock), so its lines stay in reading order."""
        if not self.words.rtl:
            return Paragraph(self._plain(value), style)
        shown = self.typesetter.body(self.words.directed(value.replace("\n", " ")))
        block = TextBlock(shown, layout.text_style(style), self.typesetter)
        block.spaceBefore = style.spaceBefore
        return block

    def _row(self, *parts: str, sep: str = " ") -> str:
        """Markup parts of one line in reading order (right to left in RTL)."""
        return sep.join(reversed(parts) if self.words.rtl else parts)

    # -- document parts -----------------------------------------------------

    def flowables(self) -> Iterator[Flowable]:
        """Header, timeline and integrity block, in reading order."""
        yield from self._header()
        s, w = self.styles, self.words
        yield self._text(w("timeline"), s.heading)
        yield HRFlowable(width="100%", thickness=0.6, color=RULE, spaceAfter=4)
        if not self.entries:
            yield self._text(w("no_messages"), s.body)
        day: date | None = None
        hashes = iter_chain(self.case.reference, self.entries)
        for number, (entry, digest) in enumerate(
            zip(self.entries, hashes, strict=True), start=1
        ):
            self.final_hash = digest
            local_day = entry.ts.astimezone(self.tz).date()
            if local_day != day:
                day = local_day
                heading = self._text(w.day(entry.ts, self.tz), s.day)
                heading.keepWithNext = 1
                yield heading
            yield from self._entry(entry, number)
        yield from self._closing()

    def _header(self) -> Iterator[Flowable]:
        s, case, w = self.styles, self.case, self.words
        town = self._text(case.town_name, s.town)
        brand = self._text(w("brand"), s.small)
        logo = (
            layout.logo(case.logo_path, LOGO_MAX_W, LOGO_MAX_H)
            if case.logo_path
            else None
        )
        cells: list[Any] = [[town, brand], logo or ""]
        widths = [self.width - LOGO_MAX_W, LOGO_MAX_W]
        at = (1, 0)
        if w.rtl:  # the logo on the left, the town's name flush right
            cells, widths, at = cells[::-1], widths[::-1], (0, 0)
        letterhead = Table(
            [cells],
            colWidths=widths,
            style=TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ALIGN", at, at, "LEFT" if w.rtl else "RIGHT"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ]
            ),
        )
        yield letterhead
        yield HRFlowable(width="100%", thickness=1.2, color=GREY, spaceBefore=4)
        yield Spacer(1, 6 * mm)
        yield self._text(w("heading"), s.title)
        yield self._text(w("case", reference=case.reference), s.heading)
        yield Spacer(1, 3 * mm)
        yield self._facts()
        yield Spacer(1, 2 * mm)

    def _fact_rows(self) -> list[tuple[str, str]]:
        """Label and value of each line of the case's facts, as plain text."""
        case, tz, w = self.case, self.tz, self.words
        closed = w.date_time(case.closed_at, tz) if case.closed_at else w("still_open")
        topic = case.topic if self.line(case.topic) else w("not_given")
        citizen = case.citizen_name
        if not self.line(citizen):
            citizen = w("no_name_given")
        language = case.citizen_language
        return [
            (w("reference"), case.reference),
            (w("department"), case.department),
            (w("topic"), topic),
            *(((w("copy"), case.copy),) if case.copy else ()),
            (w("opened"), w.date_time(case.opened_at, tz)),
            (w("closed"), closed),
            (w("citizen"), citizen),
            # The archive copy of a case in another language says which.
            *(
                ((w("language"), w.language_name(language)),)
                if language != w.language
                else ()
            ),
            (w("staff"), ", ".join(case.staff_names) or "–"),
            (w("entries"), w.count(len(self.entries))),
            (w("created"), w.date_time(self.generated_at, tz)),
        ]

    def _facts(self) -> Table:
        s, rtl = self.styles, self.words.rtl
        data = []
        for label, value in self._fact_rows():
            row = [self._text(label, s.label), self._text(value, s.value)]
            data.append(row[::-1] if rtl else row)
        widths = [38 * mm, self.width - 38 * mm]
        return Table(
            data,
            colWidths=widths[::-1] if rtl else widths,
            hAlign="RIGHT" if rtl else "LEFT",
            style=TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("RIGHTPADDING" if rtl else "LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE),
                ]
            ),
        )

    def _entry(self, entry: Entry, number: int) -> list[Flowable]:
        """An entry's flowables, chained so a page break never splits them
        between the sender line and the text or file that follows."""
        s, ts, w = self.styles, self.typesetter, self.words
        label = self.line(w.time(entry.ts, self.tz))
        nr = w("number", number=number)
        more = self.line(f"{nr} {w('continued')}")
        body = ts.body(entry.body)
        bar = _BARS.get(entry.sender_kind)
        if entry.sender_kind == "system":
            style = self.upright if text.needs_bidi(body) else s.event
            block = TextBlock(f"{'◂' if w.rtl else '▸'} {body}", style, ts)
        else:
            style = s.message_tight if entry.attachment else s.message
            head = ts.line(entry.sender_name) or self.line(w("no_name"))
            role = self.line(w.role(entry.sender_kind))
            block = TextBlock(body, style, ts, head=head, role=role)
        gutter = Gutter(block, s, label, self.line(nr), bar, more=more)
        parts: list[Flowable] = [gutter]
        if entry.attachment:
            gutter.keepWithNext = 1
            parts.append(Gutter(self._attachment(entry.attachment), s, bar=bar))
        return parts

    def _attachment(self, att: Attachment) -> Flowable:
        s, w, plain = self.styles, self.words, self._plain
        verdict = plain(w.verdict(att.verdict))
        if att.verdict != "clean":
            verdict = f'<font color="#{ALERT.hexval()[2:]}"><b>{verdict}</b></font>'
        kind = w("image") if att.is_image else w("file")
        name = plain(att.filename) or plain(w("no_filename"))
        lines = [
            self._row(f"<b>{plain(kind + ':')}</b>", name),
            self._row(plain(w.size(att.size)), plain(att.mimetype), verdict, sep=" · "),
            f'<font name="{s.fonts.mono}" size="7.5">SHA-256: {att.sha256}</font>',
        ]
        thumb = None
        if att.is_image and att.image is not None:
            if att.verdict == "clean":
                thumb, problem = thumbnail(att.image)
            else:
                problem = "no_preview"
            if problem:
                why = plain(f"({w(problem)})")
                lines.append(f'<font color="#5f6b7a">{why}</font>')
        caption = Paragraph("<br/>".join(lines), s.attachment)
        return Stack([thumb, caption]) if thumb else caption

    def _closing(self) -> Iterator[Flowable]:
        s, w = self.styles, self.words
        count = w.count(len(self.entries))
        explanation = w("chain", count=count, scheme=SCHEME)
        yield Spacer(1, 4 * mm)
        yield Paragraph(self._plain(w("end")), s.small_center)
        yield KeepTogether(
            [
                self._text(w("integrity"), s.heading),
                HRFlowable(width="100%", thickness=0.6, color=RULE, spaceAfter=4),
                self._text(explanation, s.body),
                self._text(w("final_value"), s.label),
                Paragraph(self.final_hash, s.hash),
            ]
        )
