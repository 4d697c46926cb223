"""Attachment scanning: content allow-list, safe file names and clamd verdicts."""

from __future__ import annotations

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.content import (
    DEFAULT_ALLOWED,
    Detected,
    check_allowed,
    clean_filename,
    detect,
    expand_kinds,
)
from bots.scanner.verdict import (
    Clean,
    Infected,
    ScanError,
    ScanTimeout,
    ScanTooLarge,
    ScanUnavailable,
    Verdict,
)

__all__ = [
    "DEFAULT_ALLOWED",
    "ClamdClient",
    "Clean",
    "Detected",
    "Infected",
    "ScanError",
    "ScanTimeout",
    "ScanTooLarge",
    "ScanUnavailable",
    "Verdict",
    "check_allowed",
    "clean_filename",
    "detect",
    "expand_kinds",
]
