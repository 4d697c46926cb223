"""What a bot adds to data protection for the data it owns (its files, its
rows' personal data): a :class:`Part`, given to ``ctx.privacy.add_part``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..db.models import Case
from ..synapse_admin import SynapseAdmin


@dataclass
class Export:
    """What an Art. 15 export collects before it is written as a zip."""

    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def add_file(self, name: str, content: bytes) -> str:
        """Add a file under ``name`` (made unique); returns the name used."""
        base, dot, ext = name.rpartition(".")
        stem, suffix = (base, f".{ext}") if dot else (name, "")
        candidate, n = name, 1
        while candidate in self.files:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        self.files[candidate] = content
        return candidate


@dataclass(frozen=True)
class Part:
    """What a bot adds to erasure, expiry and export for the data it owns."""

    name: str
    #: The ``mxc://`` URIs of the case's files this part recorded.
    media: Callable[[Case], Awaitable[Sequence[str]]] | None = None
    #: Delete the part's files of the case (its rows go with the case row);
    #: gets the action (erased/expired); returns counts for the audit.
    erase: Callable[[Case, str], Awaitable[dict[str, int]]] | None = None
    #: Add the case's data of this part to an export (under ``case.reference``).
    export: Callable[[Case, Export, SynapseAdmin | None], Awaitable[None]] | None = None
    #: Cases this part knows an e-mail address for (lower-cased match).
    cases_of_email: Callable[[str], Awaitable[Sequence[str]]] | None = None
    #: Delete the files of a case whose files expired (the case stays);
    #: returns how many.
    expire_files: Callable[[Case, SynapseAdmin], Awaitable[int]] | None = None
    #: The daily sweep's own work of the part (e.g. old transcript PDFs).
    sweep: Callable[[datetime], Awaitable[dict[str, int]]] | None = None
