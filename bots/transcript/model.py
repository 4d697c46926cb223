"""Plain data a transcript is made of: the case, its entries and their attachments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SenderKind = Literal["citizen", "staff", "system"]

SENDER_KINDS: frozenset[str] = frozenset({"citizen", "staff", "system"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _require_aware(name: str, value: datetime) -> None:
    # A naive time would be silently read as the server's local zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


@dataclass(frozen=True)
class Attachment:
    """A file sent in the case; `image` holds bytes to draw a thumbnail from.

    `image` is only used for drawing and never hashed: the chain covers
    `sha256`, the digest of the original file as stored and scanned.
    """

    filename: str
    size: int
    sha256: str
    mimetype: str
    verdict: str  # "clean", "infected" or "pending"
    image: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"attachment {self.filename!r}: size must be >= 0")
        if not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(
                f"attachment {self.filename!r}: sha256 must be 64 lowercase hex "
                f"digits, got {self.sha256!r}"
            )

    @property
    def is_image(self) -> bool:
        return self.mimetype.lower().startswith("image/")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: a message, a file or a system event."""

    ts: datetime
    sender_kind: SenderKind
    sender_name: str
    body: str
    attachment: Attachment | None = None
    event_id: str | None = None

    def __post_init__(self) -> None:
        _require_aware("Entry.ts", self.ts)
        if self.sender_kind not in SENDER_KINDS:
            raise ValueError(
                f"Entry.sender_kind must be one of {sorted(SENDER_KINDS)}, "
                f"got {self.sender_kind!r}"
            )


@dataclass(frozen=True)
class CaseInfo:
    """What the header of a transcript states about the case."""

    reference: str
    department: str
    topic: str
    opened_at: datetime
    closed_at: datetime | None
    citizen_name: str
    staff_names: tuple[str, ...]
    town_name: str
    logo_path: str | None = None
    timezone: str = "Europe/Berlin"
    #: Which copy this is (the town's archive with notes, or the citizen's).
    copy: str = ""
    #: The language the copy is written in (``de``, ``en``, ``tr``, ``ar``, ``uk``,
    #: ``ru``): the archive's is German, the citizen's the case's.
    language: str = "de"
    #: The language the citizen chose; named in a copy written in another one.
    citizen_language: str = "de"

    def __post_init__(self) -> None:
        if not self.reference.strip():
            raise ValueError("CaseInfo.reference must not be empty")
        _require_aware("CaseInfo.opened_at", self.opened_at)
        if self.closed_at is not None:
            _require_aware("CaseInfo.closed_at", self.closed_at)


@dataclass(frozen=True)
class RenderedTranscript:
    """A finished PDF with the chain value it prints on its last page."""

    pdf: bytes = field(repr=False)
    final_hash: str
    pages: int
