"""The embedded TrueType family that covers what citizens write."""

from __future__ import annotations

import os
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from bridge.errors import BuergerchatError

DEFAULT_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
DEBIAN_PACKAGE = "fonts-dejavu-core"

# DejaVu covers Latin (incl. Turkish), Greek, Cyrillic, Arabic with its
# presentation forms, Hebrew and many symbols; CJK is not covered.
_FILES = {
    "regular": "DejaVuSans.ttf",
    "bold": "DejaVuSans-Bold.ttf",
    "italic": "DejaVuSans-Oblique.ttf",
    "bolditalic": "DejaVuSans-BoldOblique.ttf",
    "mono": "DejaVuSansMono.ttf",
    "mono_bold": "DejaVuSansMono-Bold.ttf",
}


class FontMissingError(BuergerchatError):
    """A font file the transcript needs is not installed."""

    errcode = "BC_TRANSCRIPT_FONT_MISSING"


@dataclass(frozen=True)
class FontFamily:
    """Registered reportlab font names and the regular face's character map."""

    regular: str
    bold: str
    italic: str
    bolditalic: str
    mono: str
    mono_bold: str
    codepoints: frozenset[int]


_REGISTER = threading.Lock()


def load_fonts(font_dir: str = DEFAULT_FONT_DIR) -> FontFamily:
    """Register the DejaVu family from `font_dir` once per process.

    Safe to call from several rendering threads at once.
    """
    with _REGISTER:
        return _load(font_dir)


@lru_cache(maxsize=4)
def _load(font_dir: str) -> FontFamily:
    for name in _FILES.values():
        path = os.path.join(font_dir, name)
        if not os.path.isfile(path):
            raise FontMissingError(
                f"Transcript font not found: {path}. Install the Debian package "
                f"{DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE}) or point "
                "the transcript font directory at a folder holding the DejaVu "
                "Sans TTF files.",
                path=path,
            )
    # Distinct names per folder so two folders never overwrite each other.
    tag = f"BC{zlib.crc32(font_dir.encode()):08x}"
    names = {kind: f"{tag}-{kind}" for kind in _FILES}
    for kind, filename in _FILES.items():
        pdfmetrics.registerFont(TTFont(names[kind], os.path.join(font_dir, filename)))
    family = names["regular"]
    addMapping(family, 0, 0, names["regular"])
    addMapping(family, 1, 0, names["bold"])
    addMapping(family, 0, 1, names["italic"])
    addMapping(family, 1, 1, names["bolditalic"])
    regular = pdfmetrics.getFont(names["regular"])
    return FontFamily(
        regular=names["regular"],
        bold=names["bold"],
        italic=names["italic"],
        bolditalic=names["bolditalic"],
        mono=names["mono"],
        mono_bold=names["mono_bold"],
        # Only the BMP: reportlab writes broken ToUnicode entries for astral
        # characters, which would make them unsearchable in the PDF.
        codepoints=frozenset(c for c in regular.face.charToGlyph if c < 0x10000),
    )
