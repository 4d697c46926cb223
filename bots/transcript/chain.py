"""Hash chain over a transcript's entries, so a changed entry is detectable.

Definition (scheme ``buergerchat-transcript-v1``):

* ``canonical(x)`` is ``json.dumps(x, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` encoded as UTF-8 (the Matrix canonical JSON style).
* ``genesis = sha256(canonical({"scheme": "buergerchat-transcript-v1",
  "reference": case.reference}))``, as lowercase hex.
* For entry *i* (from 1), ``h_i = sha256(canonical(record_i))`` with the
  record holding the entry's stable fields and the previous hash::

      {"prev": h_{i-1} (genesis for i = 1),
       "ts_ms": milliseconds since the Unix epoch (UTC, floored),
       "kind": "citizen" | "staff" | "system",
       "sender": sender_name, "body": body, "event_id": event_id or null,
       "attachment": null or {"filename", "size", "sha256", "mimetype"}}

* The final hash is ``h_n`` (``genesis`` for a case without entries).

Text is hashed exactly as given (no Unicode normalisation). Image bytes never
enter the chain, only the file's SHA-256. The scan verdict is left out on
purpose: it changes from "pending" to "clean" after the fact and must not
break verification of an earlier export.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.transcript.model import CaseInfo, Entry

SCHEME = "buergerchat-transcript-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def canonical_json(value: Any) -> bytes:
    """Serialise `value` deterministically (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def genesis_hash(reference: str) -> str:
    """The value the first entry chains to, bound to the case reference."""
    return hashlib.sha256(
        canonical_json({"scheme": SCHEME, "reference": reference})
    ).hexdigest()


def entry_record(entry: Entry, prev: str) -> dict[str, Any]:
    """The fields of `entry` that the chain covers, linked to `prev`."""
    att = entry.attachment
    return {
        "prev": prev,
        "ts_ms": (entry.ts - _EPOCH) // _MS,
        "kind": entry.sender_kind,
        "sender": entry.sender_name,
        "body": entry.body,
        "event_id": entry.event_id,
        "attachment": None
        if att is None
        else {
            "filename": att.filename,
            "size": att.size,
            "sha256": att.sha256,
            "mimetype": att.mimetype,
        },
    }


def entry_hash(entry: Entry, prev: str) -> str:
    """Hash of one entry chained to the hash before it."""
    return hashlib.sha256(canonical_json(entry_record(entry, prev))).hexdigest()


def iter_chain(reference: str, entries: Iterable[Entry]) -> Iterable[str]:
    """Yield the hash of each entry in order, without holding them all."""
    prev = genesis_hash(reference)
    for index, entry in enumerate(entries, start=1):
        try:
            prev = entry_hash(entry, prev)
        except UnicodeEncodeError as exc:
            # Lone surrogates cannot be stored in Matrix either; name the entry.
            raise ValueError(
                f"entry {index} ({entry.event_id or 'no event id'}) contains text "
                f"that is not valid Unicode: {exc.reason}"
            ) from exc
        yield prev


def chain(case: CaseInfo, entries: Sequence[Entry]) -> list[str]:
    """Hash per entry, in order; the last one is the transcript's final hash."""
    return list(iter_chain(case.reference, entries))


def final_hash(case: CaseInfo, entries: Iterable[Entry]) -> str:
    """The chain value printed on a transcript's last page."""
    last = genesis_hash(case.reference)
    for last in iter_chain(case.reference, entries):  # noqa: B007 - keep the last
        pass
    return last


def verify(case: CaseInfo, entries: Iterable[Entry], expected: str) -> bool:
    """True if recomputing the chain over `entries` gives `expected`."""
    actual = final_hash(case, entries)
    return hmac.compare_digest(actual, expected.strip().lower())
