"""Turn what a citizen typed into text the PDF can show faithfully.

Three problems are solved here: characters the font lacks (shown as their
code points instead of silently vanishing), reportlab's markup parser (so text
is escaped), and right-to-left scripts (Arabic letters are shaped with
arabic-reshaper and lines reordered with python-bidi *after* wrapping, since
reordering a whole paragraph first would put its lines in the wrong order).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from xml.sax.saxutils import escape

from arabic_reshaper import ArabicReshaper
from arabic_reshaper.ligatures import LIGATURES
from bidi import get_display
from bidi.algorithm import get_display as get_display_mirrored
from reportlab.pdfbase.pdfmetrics import stringWidth

# Hebrew, Arabic, Syriac, Thaana, NKo, ..., their presentation forms, the
# explicit direction controls, and the RTL blocks of the supplementary planes.
_NEEDS_BIDI = re.compile(
    "[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\u200e\u200f\u061c"
    "\u202a-\u202e\u2066-\u2069\U00010800-\U00010fff\U0001e800-\U0001efff]"
)
_STRONG_RTL = frozenset({"R", "AL"})
# Invisible format and control characters: soft hyphens, zero-width joiners
# and the like would print as stray glyphs, so they are dropped for display.
_INVISIBLE = frozenset({"Cf", "Cc"})
# Direction controls survive until the bidi step has applied them.
_BIDI_CONTROLS = frozenset(
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

_NEWLINES = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n"})
_BLANK_RUNS = re.compile(r"\n{3,}")

Measure = Callable[[str], float]
Reshape = Callable[[str], str]


def make_reshaper(codepoints: frozenset[int]) -> Reshape:
    """An Arabic shaper that keeps vowel marks and only uses ligatures the
    font has (a missing ligature glyph would print as a placeholder)."""
    config: dict[str, bool] = {"delete_harakat": False}
    for name, (_, forms) in LIGATURES:
        if any(ord(ch) not in codepoints for form in forms for ch in form):
            config[name] = False
    return ArabicReshaper(configuration=config).reshape


def needs_bidi(text: str) -> bool:
    """True if `text` holds right-to-left letters or direction controls."""
    return _NEEDS_BIDI.search(text) is not None


def base_direction(text: str) -> str:
    """'R' or 'L' from the first strong character (Unicode rules P2/P3)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _STRONG_RTL:
            return "R"
        if kind == "L":
            return "L"
    return "L"


def printable_glyphs(codepoints: frozenset[int]) -> frozenset[str]:
    """The font's characters minus invisible ones (see :func:`displayable`)."""
    chars = map(chr, codepoints)
    return frozenset(c for c in chars if unicodedata.category(c) not in _INVISIBLE)


def displayable(text: str, glyphs: frozenset[str]) -> str:
    """`text` with unknown glyphs as '[U+4E2D]' and invisible characters
    dropped; `glyphs` comes from :func:`printable_glyphs`."""
    text = text.replace("\r\n", "\n").translate(_NEWLINES).replace("\t", "    ")
    if glyphs.issuperset(text):
        return text
    out: list[str] = []
    missing: list[str] = []
    for char in text:
        if char in glyphs or char == "\n" or char in _BIDI_CONTROLS:
            if missing:
                out.append("[" + " ".join(missing) + "]")
                missing = []
            out.append(char)
        elif unicodedata.category(char) in _INVISIBLE or _is_variation(char):
            continue
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")
        else:
            missing.append(f"U+{ord(char):04X}")
    if missing:
        out.append("[" + " ".join(missing) + "]")
    return "".join(out)


def _is_variation(char: str) -> bool:
    code = ord(char)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def markup(text: str) -> str:
    """Escape `text` for a reportlab Paragraph, keeping its line breaks."""
    return escape(text).replace("\n", "<br/>")


def wrap_words(line: str, width: float, measure: Measure) -> list[str]:
    """Greedy word wrap; words wider than `width` are cut, at a URL's
    punctuation where possible. Widths add up exactly (no kerning)."""
    space = measure(" ")
    out: list[str] = []
    words: list[str] = []
    used = 0.0
    for word in line.split(" "):
        size = measure(word)
        if words and used + space + size <= width:
            words.append(word)
            used += space + size
            continue
        if words:
            out.append(" ".join(words))
        while size > width and len(word) > 1:
            cut = _cut_point(word, width, measure)
            out.append(word[:cut])
            word = word[cut:]
            size = measure(word)
        words, used = [word], size
    out.append(" ".join(words))
    return out


_BREAK_AFTER = frozenset("/-?&=_.,;:")


def _cut_point(word: str, width: float, measure: Measure) -> int:
    low, high = 1, len(word)
    while low < high:
        mid = (low + high + 1) // 2
        if measure(word[:mid]) <= width:
            low = mid
        else:
            high = mid - 1
    # Prefer to break a URL after a separator in the last third of the line.
    for index in range(low, max(low * 2 // 3, 1), -1):
        if word[index - 1] in _BREAK_AFTER:
            return index
    return low


def _drop_bidi_controls(text: str) -> str:
    return "".join(c for c in text if c not in _BIDI_CONTROLS)


def reorder(line: str, base_dir: str) -> str:
    """`line` in drawing order (Unicode bidi, rules L1-L4). python-bidi's fast
    implementation leaves out L4, the mirroring of brackets in right-to-left
    runs, so a line holding one goes through its pure-Python one instead."""
    if any(unicodedata.mirrored(char) for char in line):
        return str(get_display_mirrored(line, base_dir=base_dir))
    return str(get_display(line, base_dir=base_dir))


def visual_line(text: str, reshape: Reshape) -> str:
    """One unwrapped line (a name, a file name) in drawing order."""
    if not needs_bidi(text):
        return text
    shown = reorder(reshape(text), base_direction(text))
    return _drop_bidi_controls(shown)


def visual_lines(
    text: str, width: float, measure: Measure, reshape: Reshape
) -> tuple[list[str], str]:
    """Shape, wrap and reorder bidirectional `text` into lines in drawing order.

    Returns the lines and the paragraph's base direction ('L' or 'R'), which
    decides whether the lines are set flush left or flush right.
    """
    direction = base_direction(text)
    shaped = reshape(text)
    lines: list[str] = []
    for logical in shaped.split("\n"):
        for line in wrap_words(logical, width, measure):
            shown = reorder(line, direction)
            lines.append(_drop_bidi_controls(shown))
    return lines, direction


class Typesetter:
    """Prepares text for one font family: placeholders, shaping, wrapping."""

    def __init__(self, codepoints: frozenset[int]) -> None:
        self.glyphs = printable_glyphs(codepoints)
        self.reshape = make_reshaper(codepoints)

    def clean(self, value: str) -> str:
        """`value` with every character drawable (see :func:`displayable`)."""
        return displayable(value, self.glyphs)

    def body(self, value: str) -> str:
        """Message text: cleaned, at most one blank line in a row, so a flood
        of empty lines cannot spread a message over pages."""
        return _BLANK_RUNS.sub("\n\n", self.clean(value)).strip("\n")

    def line(self, value: str) -> str:
        """A single line (name, file name) ready to draw."""
        return visual_line(self.clean(value).replace("\n", " "), self.reshape)

    def lines(
        self, value: str, width: float, font: str, size: float
    ) -> tuple[list[str], bool]:
        """Cleaned `value` wrapped to `width`; True if set flush right (RTL)."""

        def measure(part: str) -> float:
            return float(stringWidth(part, font, size))

        if needs_bidi(value):
            lines, direction = visual_lines(value, width, measure, self.reshape)
            return lines, direction == "R"
        out: list[str] = []
        for paragraph in value.split("\n"):
            out.extend(wrap_words(paragraph, width, measure))
        return out, False
