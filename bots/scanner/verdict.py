"""What a scan can end in: a verdict, or an error that holds the file.

Fail closed: only :class:`Clean` lets a file through. Every way a scan can go wrong
raises a :class:`ScanError`, and callers must treat that as "hold and retry later",
never as clean.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import BuergerchatError


@dataclass(frozen=True, slots=True)
class Clean:
    """clamd read the whole file and found nothing."""


@dataclass(frozen=True, slots=True)
class Infected:
    """clamd found ``signature`` (e.g. ``Win.Test.EICAR_HDB-1``)."""

    signature: str


Verdict = Clean | Infected


class ScanError(BuergerchatError):
    """No verdict: the file stays held until a later scan succeeds. The operator's
    error (logged, shown in /healthz), never a citizen's answer."""

    errcode = "BC_SCAN_FAILED"


class ScanUnavailable(ScanError):
    """clamd cannot be reached (not running, wrong address, connection dropped)."""

    errcode = "BC_SCAN_UNAVAILABLE"


class ScanTimeout(ScanUnavailable):
    """clamd did not accept the connection or finish the scan in time."""

    errcode = "BC_SCAN_TIMEOUT"


class ScanTooLarge(ScanError):
    """clamd refused the stream as longer than its ``StreamMaxLength``.

    The upload limit should have caught the file first, so this points to a clamd
    configured with a smaller limit than ``max_upload_size``.
    """

    errcode = "BC_SCAN_TOO_LARGE"
