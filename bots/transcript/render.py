"""Render a case transcript to PDF, and read its final hash back from one."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from bots.transcript.chain import SCHEME
from bots.transcript.fonts import DEFAULT_FONT_DIR, load_fonts
from bots.transcript.layout import (
    GREY,
    RULE,
    KeepTogetherUnlessTaller,
    Styles,
    make_styles,
)
from bots.transcript.model import CaseInfo, Entry, RenderedTranscript
from bots.transcript.story import LazyStory, Story
from bots.transcript.words import Words
from bridge.clock import utcnow

_LEFT_MARGIN = 25 * mm  # room for filing holes, as in DIN 5008 letters
_FOOTER_Y = 12 * mm
_FOOTER_SIZE = 8
# ASCII only, so the PDF stores the keywords as a plain literal string.
_KEYWORD_HASH = re.compile(rb"sha256-chain:([0-9a-f]{64})")


class _PageCountCanvas(Canvas):  # type: ignore[misc]
    """Holds finished pages back until the total is known, then numbers them.

    A page's drawing operations are kept either way (reportlab keeps every
    page stream until it saves), so deferring costs little extra memory and
    gives plain "Seite x von y" text that searches and copies as one line.
    """

    font_name = "Helvetica"

    @staticmethod
    def page_label(number: int, total: int) -> str:
        """The footer's page number, ready to draw (the copy's language)."""
        return f"Seite {number} von {total}"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._held.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held)
        for number, state in enumerate(self._held, start=1):
            self.__dict__.update(state)
            self.setFillColor(GREY)
            self.setFont(self.font_name, _FOOTER_SIZE)
            self.drawString(_LEFT_MARGIN, _FOOTER_Y, self.page_label(number, total))
            super().showPage()
        self._held.clear()
        super().save()


class _TranscriptDoc(BaseDocTemplate):  # type: ignore[misc]
    """A4 pages with a running header and a footer naming town and case, in
    the copy's language (`words`); `shape` readies a line for drawing."""

    def __init__(
        self,
        buffer: io.BytesIO,
        case: CaseInfo,
        styles: Styles,
        words: Words,
        **info: Any,
    ) -> None:
        super().__init__(
            buffer,
            pagesize=A4,
            leftMargin=_LEFT_MARGIN,
            rightMargin=20 * mm,
            topMargin=20 * mm,
            bottomMargin=22 * mm,
            creator="Bürgerchat",
            producer="Bürgerchat (ReportLab)",
            lang=words.tag,
            keepTogetherClass=KeepTogetherUnlessTaller,
            **info,
        )
        self.case = case
        self.styles = styles
        self.words = words
        self.shape: Callable[[str], str] = str
        self.page_count = 0
        self.final_keywords = ""
        self.pdf_date = ""
        frame = Frame(
            self.leftMargin,
            self.bottomMargin,
            self.width,
            self.height,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
            id="body",
        )
        template = PageTemplate(id="page", frames=[frame], onPage=self._decorate)
        self.addPageTemplates([template])

    def _decorate(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        self.page_count = max(self.page_count, doc.page)
        case, words, shape = self.case, self.words, self.shape
        font = self.styles.fonts.regular
        left = self.leftMargin
        right = self.pagesize[0] - self.rightMargin
        canv.saveState()
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.5)
        canv.line(left, _FOOTER_Y + 9, right, _FOOTER_Y + 9)
        canv.setFillColor(GREY)
        canv.setFont(font, _FOOTER_SIZE)
        reference = words("case", reference=case.reference)
        footer = f"{case.town_name} · {reference}"
        canv.drawRightString(right, _FOOTER_Y, shape(footer))
        if doc.page > 1:
            top = self.pagesize[1] - 12 * mm
            title = f"{words('heading')} · {reference}"
            canv.drawString(left, top, shape(title))
            canv.drawRightString(right, top, shape(case.department))
            canv.line(left, top - 4, right, top - 4)
        canv.restoreState()

    def _endBuild(self) -> None:
        # Metadata that is only known once the last entry went through the chain.
        self.canv.setKeywords(self.final_keywords)
        created = self.pdf_date
        self.canv.setDateFormatter(lambda *_: created)
        super()._endBuild()


def render_pdf(
    case: CaseInfo,
    entries: Sequence[Entry],
    *,
    generated_at: datetime | None = None,
    font_dir: str = DEFAULT_FONT_DIR,
) -> RenderedTranscript:
    """Render the transcript of `case`; blocking, so call it in a thread.

    `entries` must be in timeline order. `generated_at` (default: now) is
    printed in the header and used as the PDF's creation date. The PDF is
    written in `case.language` (its labels, dates and title). Raises
    FontMissingError without the DejaVu fonts and ValueError for an unknown
    time zone or text that is not valid Unicode.
    """
    try:
        tz = ZoneInfo(case.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"CaseInfo.timezone: unknown zone {case.timezone!r}") from exc
    created = generated_at or utcnow()
    if created.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    styles = make_styles(load_fonts(font_dir))
    words = Words(case.language)
    buffer = io.BytesIO()
    subject = (
        words("subject_topic", department=case.department, topic=case.topic)
        if case.topic
        else words("subject", department=case.department)
    )
    doc = _TranscriptDoc(
        buffer,
        case,
        styles,
        words,
        title=words("title", reference=case.reference),
        author=case.town_name,
        subject=subject,
    )
    doc.pdf_date = f"D:{created.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"
    story = Story(case, entries, styles, tz, created, doc.width, words)
    doc.shape = story.line

    def flowables() -> Iterator[Flowable]:
        yield from story.flowables()
        doc.final_keywords = f"{SCHEME} sha256-chain:{story.final_hash}"

    def page_label(number: int, total: int) -> str:
        return story.line(words("page", number=number, total=total))

    canvas_class = type(
        "_Canvas",
        (_PageCountCanvas,),
        {"font_name": styles.fonts.regular, "page_label": staticmethod(page_label)},
    )
    doc.build(LazyStory(flowables()), canvasmaker=canvas_class)
    return RenderedTranscript(
        pdf=buffer.getvalue(), final_hash=story.final_hash, pages=doc.page_count
    )


def stored_final_hash(pdf: bytes) -> str | None:
    """The final hash a PDF from :func:`render_pdf` carries in its keywords.

    None if there is none (another producer, or a PDF rewritten with
    compressed metadata); compare the result with :func:`verify`.
    """
    found = _KEYWORD_HASH.findall(pdf)
    return found[-1].decode("ascii") if len(set(found)) == 1 else None
