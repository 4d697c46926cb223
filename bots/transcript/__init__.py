"""PDF transcripts of citizen chat cases, with a tamper-evident hash chain.

Pure core: no Matrix or HTTP here. Callers build a :class:`CaseInfo` and a list
of :class:`Entry` and call :func:`render_pdf` (blocking; run it in a thread)
or :func:`verify` to recheck a stored final hash.
"""

from __future__ import annotations

from bots.transcript.chain import (
    SCHEME,
    canonical_json,
    chain,
    entry_hash,
    entry_record,
    final_hash,
    genesis_hash,
    verify,
)
from bots.transcript.fonts import DEBIAN_PACKAGE, DEFAULT_FONT_DIR, FontMissingError
from bots.transcript.model import Attachment, CaseInfo, Entry, RenderedTranscript
from bots.transcript.render import render_pdf, stored_final_hash

__all__ = [
    "DEBIAN_PACKAGE",
    "DEFAULT_FONT_DIR",
    "SCHEME",
    "Attachment",
    "CaseInfo",
    "Entry",
    "FontMissingError",
    "RenderedTranscript",
    "canonical_json",
    "chain",
    "entry_hash",
    "entry_record",
    "final_hash",
    "genesis_hash",
    "render_pdf",
    "stored_final_hash",
    "verify",
]
