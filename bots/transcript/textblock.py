"""A plain-text flowable for chat messages, much faster than a Paragraph.

Chat text has no markup, so it is wrapped with the font's widths and drawn
line by line; this skips reportlab's markup parser and fragment machinery,
which dominated the time for long transcripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from reportlab.lib.colors import Color
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable

from bots.transcript.text import Measure, Typesetter, wrap_words

BODY, HEAD, HEAD_ROLE, BODY_RIGHT = range(4)


@dataclass(frozen=True)
class TextStyle:
    """How a TextBlock looks; `background` gives system events their band."""

    font: str
    size: float
    leading: float
    color: Color
    head_font: str
    role_font: str
    role_size: float
    role_color: Color
    space_after: float = 5.0
    background: Color | None = None
    pad_x: float = 0.0
    pad_y: float = 0.0


class Line(NamedTuple):
    text: str
    kind: int
    role: str = ""


class TextBlock(Flowable):
    """Optional bold sender line (with a small role label) above wrapped text.

    Splits between lines, never leaving a single line of a longer block
    alone at the bottom or top of a page.
    """

    def __init__(
        self,
        text: str,
        style: TextStyle,
        typesetter: Typesetter,
        head: str = "",
        role: str = "",
        lines: list[Line] | None = None,
    ) -> None:
        super().__init__()
        self.text = text
        self.style = style
        self.typesetter = typesetter
        self.head = head
        self.role = role
        self._lines = lines
        self._fixed = lines is not None  # a split part keeps its lines
        self._width = -1.0

    def _layout(self, width: float) -> list[Line]:
        st, ts = self.style, self.typesetter
        inner = width - 2 * st.pad_x
        out: list[Line] = []
        if self.head:
            names = wrap_words(self.head, inner, _measure(st.head_font, st.size))
            out.extend(Line(n, HEAD) for n in names[:-1])
            last = names[-1]
            role_w = stringWidth(f"  {self.role}", st.role_font, st.role_size)
            if stringWidth(last, st.head_font, st.size) + role_w <= inner:
                out.append(Line(last, HEAD_ROLE, self.role))
            else:
                out.extend((Line(last, HEAD), Line("", HEAD_ROLE, self.role)))
        if self.text:
            body, rtl = ts.lines(self.text, inner, st.font, st.size)
            kind = BODY_RIGHT if rtl else BODY
            out.extend(Line(b, kind) for b in body)
        return out

    def _ensure(self, width: float) -> list[Line]:
        lines = self._lines
        if lines is None or (not self._fixed and self._width != width):
            lines = self._lines = self._layout(width)
            self._width = width
        return lines

    @property
    def first_baseline(self) -> float:
        """Distance from the top to the first line's baseline."""
        st = self.style
        return st.pad_y + st.leading - (st.leading - st.size) / 2 - 0.2 * st.size

    def _height(self, count: int) -> float:
        return count * self.style.leading + 2 * self.style.pad_y

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        lines = self._ensure(availWidth)
        self.width, self.height = availWidth, self._height(len(lines))
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        lines = self._ensure(availWidth)
        st = self.style
        fit = int((availHeight - 2 * st.pad_y) // st.leading)
        total = len(lines)
        if fit >= total:
            return []  # fits as a whole yet was refused (e.g. gutter height)
        if total - fit < 2:
            fit = total - 2  # no single line carried over to the next page
        if fit < 2:
            return []  # no single line left behind either: move the block
        first = self._part(lines[:fit], 0.0)
        rest = self._part(lines[fit:], st.space_after)
        return [first, rest]

    def _part(self, lines: list[Line], space_after: float) -> TextBlock:
        part = TextBlock(
            "", self.style, self.typesetter, self.head, self.role, lines=lines
        )
        part.spaceAfter = space_after
        return part

    def getSpaceAfter(self) -> float:
        return float(getattr(self, "spaceAfter", self.style.space_after))

    def draw(self) -> None:
        st = self.style
        canv = self.canv
        lines = self._lines or []
        if st.background is not None:
            canv.setFillColor(st.background)
            canv.rect(0, 0, self.width, self.height, stroke=0, fill=1)
        y = self.height - self.first_baseline
        text = canv.beginText()
        text.setFillColor(st.color)
        right = self.width - st.pad_x
        font = ""
        for line in lines:
            if line.kind == BODY_RIGHT:
                x = right - stringWidth(line.text, st.font, st.size)
            else:
                x = st.pad_x
            text.setTextOrigin(x, y)
            wanted = st.head_font if line.kind in (HEAD, HEAD_ROLE) else st.font
            if wanted != font:
                font = wanted
                text.setFont(font, st.size)
            text.textOut(line.text)
            if line.kind == HEAD_ROLE:
                text.setFont(st.role_font, st.role_size)
                text.setFillColor(st.role_color)
                text.textOut(f"  {line.role}" if line.text else line.role)
                text.setFillColor(st.color)
                font = ""
            y -= st.leading
        canv.drawText(text)


def _measure(font: str, size: float) -> Measure:
    def measure(value: str) -> float:
        return float(stringWidth(value, font, size))

    return measure
