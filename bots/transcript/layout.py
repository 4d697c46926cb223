"""Styles and flowables of the transcript page: the timeline's building blocks."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image as PILImage
from PIL import ImageOps
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, Image, KeepTogether

from bots.transcript.fonts import FontFamily
from bots.transcript.textblock import TextStyle

log = logging.getLogger(__name__)

INK = colors.HexColor("#1a1a1a")
GREY = colors.HexColor("#5f6b7a")
RULE = colors.HexColor("#b8c0ca")
CITIZEN = colors.HexColor("#1f5f99")
STAFF = colors.HexColor("#2e7d4f")
SYSTEM_BG = colors.HexColor("#eef1f4")
ALERT = colors.HexColor("#b42318")

GUTTER = 46.0  # room left of the text for time and entry number
GUTTER_MIN_H = 18.0  # time plus entry number
BAR_GAP = 7.0  # distance of the sender's colour bar from the text
THUMB_W, THUMB_H = 170.0, 128.0  # points on the page
THUMB_PX = 420  # pixels kept: about 150 dpi at the printed size
# Formats Pillow cannot decode at reduced size must fit in memory whole.
MAX_FULL_DECODE_PIXELS = 20_000_000
MAX_DRAFT_PIXELS = 120_000_000


@dataclass(frozen=True)
class Styles:
    """Paragraph styles of one document, built on the embedded font family."""

    fonts: FontFamily
    message: TextStyle
    message_tight: TextStyle
    event: TextStyle
    body: ParagraphStyle
    attachment: ParagraphStyle
    day: ParagraphStyle
    heading: ParagraphStyle
    title: ParagraphStyle
    town: ParagraphStyle
    label: ParagraphStyle
    value: ParagraphStyle
    small: ParagraphStyle
    small_center: ParagraphStyle
    hash: ParagraphStyle


def _body_style(fonts: FontFamily) -> ParagraphStyle:
    """The running text every other paragraph style derives from."""
    return ParagraphStyle(
        "bc-body",
        fontName=fonts.regular,
        fontSize=9.5,
        leading=12.6,
        textColor=INK,
        alignment=TA_LEFT,
        splitLongWords=1,
        spaceAfter=5,
        allowWidows=0,
        allowOrphans=0,
    )


def _message_style(fonts: FontFamily) -> TextStyle:
    return TextStyle(
        font=fonts.regular,
        size=9.5,
        leading=12.6,
        color=INK,
        head_font=fonts.bold,
        role_font=fonts.regular,
        role_size=7.5,
        role_color=GREY,
    )


def _event_style(message: TextStyle, fonts: FontFamily) -> TextStyle:
    """System events: smaller, grey and italic on a shaded band."""
    return replace(
        message,
        font=fonts.italic,
        size=8.5,
        leading=11.0,
        color=GREY,
        space_after=7.0,
        background=SYSTEM_BG,
        pad_x=4.0,
        pad_y=2.0,
    )


def make_styles(fonts: FontFamily) -> Styles:
    """The document's styles; long words and URLs are split, never clipped."""
    base = _body_style(fonts)

    def derive(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(f"bc-{name}", parent=base, **kw)

    message = _message_style(fonts)
    return Styles(
        fonts=fonts,
        message=message,
        message_tight=replace(message, space_after=2.0),
        event=_event_style(message, fonts),
        body=base,
        attachment=derive("attachment", fontSize=8.5, leading=11, spaceAfter=6),
        day=derive(
            "day",
            fontName=fonts.bold,
            fontSize=10,
            leading=13,
            spaceBefore=8,
            spaceAfter=6,
            textColor=GREY,
        ),
        heading=derive(
            "heading", fontName=fonts.bold, fontSize=12, leading=15, spaceBefore=10
        ),
        title=derive("title", fontName=fonts.bold, fontSize=17, leading=21),
        town=derive("town", fontName=fonts.bold, fontSize=13, leading=16),
        label=derive("label", fontSize=9, textColor=GREY, spaceAfter=0),
        value=derive("value", fontSize=9.5, spaceAfter=0),
        small=derive("small", fontSize=8, leading=10.5, textColor=GREY),
        small_center=derive(
            "small-center",
            fontSize=8,
            leading=10.5,
            textColor=GREY,
            alignment=TA_CENTER,
        ),
        hash=derive("hash", fontName=fonts.mono_bold, fontSize=9, leading=12),
    )


def text_style(style: ParagraphStyle) -> TextStyle:
    """A TextBlock style that looks like the paragraph `style`: for text that
    must be wrapped before it is reordered (right-to-left lines)."""
    return TextStyle(
        font=style.fontName,
        size=style.fontSize,
        leading=style.leading,
        color=style.textColor,
        head_font=style.fontName,
        role_font=style.fontName,
        role_size=style.fontSize,
        role_color=style.textColor,
        space_after=style.spaceAfter,
    )


def right_to_left(styles: Styles) -> Styles:
    """The styles of a right-to-left copy (Arabic): paragraphs set flush right,
    system events upright (the oblique faces have no Arabic letters)."""

    def flush_right(style: ParagraphStyle) -> ParagraphStyle:
        return ParagraphStyle(f"{style.name}-rtl", parent=style, alignment=TA_RIGHT)

    names = "body attachment day heading title town label value small hash".split()
    return replace(
        styles,
        event=replace(styles.event, font=styles.fonts.regular),
        **{name: flush_right(getattr(styles, name)) for name in names},
    )


class Gutter(Flowable):
    """Draws `inner` right of a gutter holding the time and entry number.

    The coloured bar tells citizen from staff at a glance; a split keeps the
    bar, prints the time only on the first part and marks the rest with
    `more` ("Nr. 8 Forts."; by default the number and "Forts.").
    """

    def __init__(
        self,
        inner: Flowable,
        styles: Styles,
        label: str | None = None,
        number: str | None = None,
        bar: colors.Color | None = None,
        continued: bool = False,
        more: str | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.styles = styles
        self.label = label
        self.number = number
        self.bar = bar
        self.continued = continued
        self.more = more
        self._inner_h = 0.0

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        _, self._inner_h = self.inner.wrap(availWidth - GUTTER, availHeight)
        # Short system lines must still leave room for time and number.
        least = GUTTER_MIN_H if self.number else 0.0
        self.width, self.height = availWidth, max(self._inner_h, least)
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        parts = self.inner.split(availWidth - GUTTER, availHeight)
        if not parts:
            return []
        s, nr, bar, more = self.styles, self.number, self.bar, self.more
        first = Gutter(parts[0], s, self.label, nr, bar, self.continued, more)
        rest = [Gutter(p, s, None, nr, bar, True, more) for p in parts[1:]]
        return [first, *rest]

    def getSpaceBefore(self) -> float:
        return float(self.inner.getSpaceBefore())

    def getSpaceAfter(self) -> float:
        return float(self.inner.getSpaceAfter())

    def draw(self) -> None:
        canv = self.canv
        fonts = self.styles.fonts
        # Drawn before the text and on its first baseline, so copied or
        # extracted text reads "Nr. 8", then "14:12 Name ...".
        baseline = self.height - float(getattr(self.inner, "first_baseline", 9.0))
        if self.number:
            canv.setFillColor(GREY)
            canv.setFont(fonts.regular, 6.5)
            below = 9.0 if self.label else 0.0
            # A continued entry says whose text it is on the new page.
            more = self.more or f"{self.number} Forts."
            shown = more if self.continued else self.number
            canv.drawString(0, baseline - below, shown)
        if self.label:
            canv.setFillColor(INK)
            canv.setFont(fonts.bold, 8.5)
            canv.drawString(0, baseline, f"{self.label} ")
        if self.bar is not None:
            canv.setStrokeColor(self.bar)
            canv.setLineWidth(1.6)
            x = GUTTER - BAR_GAP
            canv.line(x, 0.5, x, self.height - 0.5)
        self.inner.drawOn(canv, GUTTER, self.height - self._inner_h)


class KeepTogetherUnlessTaller(KeepTogether):
    """Keeps a group on one page unless it is taller than a page anyway.

    reportlab's KeepTogether breaks the page before any group that does not
    fit, which leaves most of a page empty before a very long message.
    """

    def split(self, aW: float, aH: float) -> list[Flowable]:
        if getattr(self, "_wrapInfo", None) != (aW, aH):
            self.wrap(aW, aH)
        frame = getattr(self, "_frame", None)
        room_to_start = self._H0 + 3 * 12.6  # first part plus a few lines
        if frame is not None and self._H > frame._height and aH > room_to_start:
            return list(self._content)
        return list(super().split(aW, aH))


class Stack(Flowable):
    """Flowables kept together on one page, e.g. a thumbnail and its caption."""

    def __init__(self, parts: list[Flowable], gap: float = 3.0) -> None:
        super().__init__()
        self.parts = parts
        self.gap = gap
        self._sizes: list[tuple[float, float]] = []

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self._sizes = [p.wrap(availWidth, availHeight) for p in self.parts]
        self.width = availWidth
        self.height = sum(h for _, h in self._sizes) + self.gap * (len(self.parts) - 1)
        return self.width, self.height

    def getSpaceAfter(self) -> float:
        return float(self.parts[-1].getSpaceAfter()) if self.parts else 0.0

    def draw(self) -> None:
        y = self.height
        for part, (_, h) in zip(self.parts, self._sizes, strict=True):
            y -= h
            part.drawOn(self.canv, 0, y)
            y -= self.gap


def thumbnail(data: bytes) -> tuple[Image | None, str | None]:
    """A JPEG thumbnail flowable, or None and why it could not be made (the key
    ``preview_too_large`` or ``preview_failed`` of the catalogue's ``pdf.*``).

    Decoding stays memory-bounded: JPEGs are decoded at reduced scale and
    other formats above MAX_FULL_DECODE_PIXELS are refused.
    """
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            pixels = img.width * img.height
            if img.format == "JPEG" and pixels <= MAX_DRAFT_PIXELS:
                img.draft("RGB", (THUMB_PX, THUMB_PX))
            elif pixels > MAX_FULL_DECODE_PIXELS:
                return None, "preview_too_large"
            img.load()
            small = ImageOps.exif_transpose(img) or img
            small.thumbnail((THUMB_PX, THUMB_PX))
            small = _flatten(small)
            out = io.BytesIO()
            small.save(out, "JPEG", quality=82, optimize=True)
            width, height = small.size
    except Exception as exc:
        # Pillow's decoders raise many types on hostile input; a broken image
        # must cost only its preview, never the transcript.
        log.info("transcript thumbnail skipped: %r", exc)
        return None, "preview_failed"
    scale = min(THUMB_W / width, THUMB_H / height, 1.0)
    out.seek(0)
    flow = Image(out, width=width * scale, height=height * scale)
    flow.hAlign = "LEFT"
    return flow, None


def _flatten(img: PILImage.Image) -> PILImage.Image:
    # JPEG has no alpha: put transparent images on white, as a viewer shows them.
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = PILImage.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img.convert("RGB")


def logo(path: str, max_w: float, max_h: float) -> Image | None:
    """The town's logo scaled into max_w x max_h points, None if unusable.

    Re-encoded at about 300 dpi so a large source file does not bloat
    every transcript.
    """
    try:
        with PILImage.open(path) as img:
            img.thumbnail((round(max_w * 300 / 72), round(max_h * 300 / 72)))
            keep_alpha = img.mode in ("RGBA", "LA", "P")
            small = img.convert("RGBA" if keep_alpha else "RGB")
            out = io.BytesIO()
            small.save(out, "PNG", optimize=True)
            width, height = small.size
    except Exception as exc:
        # A missing or broken logo must not cost the archived transcript.
        log.warning("transcript logo %s not usable, left out: %r", path, exc)
        return None
    scale = min(max_w / width, max_h / height)
    out.seek(0)
    flow = Image(out, width=width * scale, height=height * scale, mask="auto")
    flow.hAlign = "RIGHT"
    return flow
