"""The transcript hash chain: its definition and what it detects."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from bots.transcript import (
    SCHEME,
    Entry,
    chain,
    entry_record,
    final_hash,
    genesis_hash,
    sample,
    verify,
)


@pytest.fixture
def entries() -> list[Entry]:
    return sample.conversation()


def _replace(entries: list[Entry], index: int, **changes: object) -> list[Entry]:
    changed = list(entries)
    changed[index] = dataclasses.replace(entries[index], **changes)  # type: ignore[arg-type]
    return changed


def test_genesis_is_sha256_of_canonical_scheme_and_reference() -> None:
    """The chain starts at sha256 of {"reference","scheme"} as compact sorted JSON."""
    expected = hashlib.sha256(
        b'{"reference":"BC-2026-000123","scheme":"buergerchat-transcript-v1"}'
    ).hexdigest()
    assert SCHEME == "buergerchat-transcript-v1"
    assert genesis_hash("BC-2026-000123") == expected


def test_each_hash_covers_the_documented_record_and_the_previous_hash(
    entries: list[Entry],
) -> None:
    """h_i = sha256(canonical JSON of the entry's record with prev = h_{i-1})."""
    case = sample.case(entries)
    prev = genesis_hash(case.reference)
    expected = []
    for entry in entries:
        record = entry_record(entry, prev)
        raw = json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        prev = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        expected.append(prev)
    assert chain(case, entries) == expected
    assert final_hash(case, entries) == expected[-1]


def test_record_holds_utc_milliseconds_and_attachment_digest_not_bytes(
    entries: list[Entry],
) -> None:
    """Times enter as epoch milliseconds; images only by their SHA-256."""
    with_image = next(e for e in entries if e.attachment and e.attachment.image)
    record = entry_record(with_image, "0" * 64)
    assert record["ts_ms"] == int(with_image.ts.timestamp() * 1000)
    assert record["attachment"] == {
        "filename": with_image.attachment.filename,  # type: ignore[union-attr]
        "size": with_image.attachment.size,  # type: ignore[union-attr]
        "sha256": with_image.attachment.sha256,  # type: ignore[union-attr]
        "mimetype": "image/jpeg",
    }
    assert set(record) == {
        "prev",
        "ts_ms",
        "kind",
        "sender",
        "body",
        "event_id",
        "attachment",
    }


def test_same_instant_in_another_zone_gives_the_same_hash(entries: list[Entry]) -> None:
    """A time zone change of the caller does not alter the chain."""
    case = sample.case(entries)
    shifted = [
        dataclasses.replace(e, ts=e.ts.astimezone(timezone(timedelta(hours=5))))
        for e in entries
    ]
    assert final_hash(case, shifted) == final_hash(case, entries)


@pytest.mark.parametrize(
    "change",
    [
        {"body": "Guten Tag! (nachträglich geändert)"},
        {"sender_name": "Jemand Anderes"},
        {"sender_kind": "staff"},
        {"ts": sample.START + timedelta(minutes=1, milliseconds=1)},
        {"event_id": "$forged"},
    ],
    ids=["body", "sender", "kind", "time", "event_id"],
)
def test_tampering_with_one_entry_changes_the_final_hash(
    entries: list[Entry], change: dict[str, object]
) -> None:
    """Editing any hashed field of entry 2 yields a different final hash."""
    case = sample.case(entries)
    original = final_hash(case, entries)
    tampered = _replace(entries, 1, **change)
    assert final_hash(case, tampered) != original
    assert not verify(case, tampered, original)


def test_tampering_with_an_attachment_digest_changes_the_final_hash(
    entries: list[Entry],
) -> None:
    """A swapped file (other SHA-256) is detected."""
    case = sample.case(entries)
    index = next(i for i, e in enumerate(entries) if e.attachment)
    original = entries[index].attachment
    assert original is not None
    swapped = dataclasses.replace(original, sha256="f" * 64)
    tampered = _replace(entries, index, attachment=swapped)
    assert final_hash(case, tampered) != final_hash(case, entries)


def test_dropping_or_reordering_entries_changes_the_final_hash(
    entries: list[Entry],
) -> None:
    """Omitted or swapped entries are detected, not only edited ones."""
    case = sample.case(entries)
    original = final_hash(case, entries)
    assert final_hash(case, entries[:3] + entries[4:]) != original
    swapped = list(entries)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    assert final_hash(case, swapped) != original


def test_chain_is_bound_to_the_case_reference(entries: list[Entry]) -> None:
    """The same entries under another reference give another final hash."""
    case = sample.case(entries)
    other = sample.case(entries, reference="BC-2026-000124")
    assert final_hash(case, entries) != final_hash(other, entries)


def test_verdict_and_thumbnail_bytes_do_not_enter_the_chain(
    entries: list[Entry],
) -> None:
    """A pending scan turning clean, or a re-encoded thumbnail, keeps the hash."""
    case = sample.case(entries)
    index = next(
        i for i, e in enumerate(entries) if e.attachment and e.attachment.image
    )
    att = entries[index].attachment
    assert att is not None
    later = dataclasses.replace(att, verdict="pending", image=b"other bytes")
    assert final_hash(case, _replace(entries, index, attachment=later)) == final_hash(
        case, entries
    )


def test_verify_accepts_the_stored_hash_in_any_case_and_with_spaces(
    entries: list[Entry],
) -> None:
    """verify() compares with a hash copied from the PDF, tolerating case/space."""
    case = sample.case(entries)
    stored = final_hash(case, entries)
    assert verify(case, entries, f" {stored.upper()}\n")
    assert not verify(case, entries, "0" * 64)


def test_empty_transcript_ends_at_the_genesis_hash() -> None:
    """A case without entries has the genesis value as its final hash."""
    case = sample.case([])
    assert chain(case, []) == []
    assert final_hash(case, []) == genesis_hash(case.reference)


def test_lone_surrogate_is_reported_with_the_entry_number() -> None:
    """Invalid Unicode raises ValueError naming the entry, not a bare codec error."""
    bad = [Entry(sample.START, "citizen", "A", "kaputt \ud800", event_id="$x")]
    with pytest.raises(ValueError, match=r"entry 1 \(\$x\)"):
        chain(sample.case(bad), bad)


def test_naive_times_are_refused() -> None:
    """An entry without time zone cannot be built (it would hash ambiguously)."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Entry(datetime(2026, 11, 21, 14, 5), "citizen", "A", "x")
