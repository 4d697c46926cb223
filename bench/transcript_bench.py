"""Time and peak memory of PDF transcript rendering for 100, 1,000 and 10,000 entries.

Run as ``python bench/transcript_bench.py``. Each size runs in a fresh
subprocess so the peak RSS (ru_maxrss) belongs to that size alone; a second
run per size measures Python's own peak allocation with tracemalloc, which
slows rendering, so its time is not the one reported.
Targets: 10,000 entries in < 10 s and < 200 MB peak.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bots.transcript import Attachment, CaseInfo, Entry, render_pdf  # noqa: E402

SIZES = (100, 1_000, 10_000)
TARGET_SECONDS, TARGET_MB = 10.0, 200.0
_WORDS = (
    "Guten Tag ich möchte meinen Wohnsitz ummelden und brauche dafür einen "
    "Termin im Bürgerbüro Größe Straße Grüße Öffnungszeiten Personalausweis "
    "Wohnungsgeberbestätigung bitte danke schön gerne natürlich Übergabe"
).split()


def _photo() -> bytes:
    from PIL import Image

    img = Image.new("RGB", (1600, 1200), (90, 140, 200))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def make_case_and_entries(count: int) -> tuple[CaseInfo, list[Entry]]:
    """A realistic mix: short and long messages, system events, files, photos."""
    start = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    photo = _photo()
    photo_sha = hashlib.sha256(photo).hexdigest()
    entries: list[Entry] = []
    for i in range(count):
        ts = start + timedelta(seconds=37 * i)
        if i % 25 == 0:
            event = f"Ereignis {i}: an Fachbereich übergeben"
            entries.append(Entry(ts, "system", "Bürgerchat", event))
            continue
        words = 4 + (i * 7919) % 60
        body = " ".join(_WORDS[(i + k) % len(_WORDS)] for k in range(words))
        attachment = None
        if i % 200 == 7:
            attachment = Attachment(
                "foto.jpg", len(photo), photo_sha, "image/jpeg", "clean", photo
            )
        elif i % 50 == 3:
            attachment = Attachment(
                "antrag.pdf", 123_456 + i, "ab" * 32, "application/pdf", "clean"
            )
        kind = "citizen" if i % 2 else "staff"
        name = "Ayşe Öztürk" if kind == "citizen" else "Jürgen Weiß"
        entries.append(Entry(ts, kind, name, body, attachment, f"$e{i}"))
    case = CaseInfo(
        reference="BC-2026-000123",
        department="Bürgerbüro",
        topic="Ummeldung",
        opened_at=start,
        closed_at=entries[-1].ts if entries else start,
        citizen_name="Ayşe Öztürk",
        staff_names=("Jürgen Weiß",),
        town_name="Stadt Musterstadt",
    )
    return case, entries


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(count: int, trace: bool) -> dict[str, float]:
    """Render `count` entries once in this process and report the figures."""
    case, entries = make_case_and_entries(count)
    render_pdf(case, entries[:3])  # load fonts outside the measurement
    rss_before = _rss_mb()
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    result = render_pdf(case, entries)
    seconds = time.perf_counter() - began
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
    return {
        "entries": count,
        "seconds": seconds,
        "pages": result.pages,
        "pdf_kb": len(result.pdf) / 1024,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _rss_mb(),
        "traced_peak_mb": traced,
    }


def _child(count: int, trace: bool) -> dict[str, float]:
    args = [sys.executable, __file__, "--one", str(count)]
    args += ["--trace"] if trace else []
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    if "--one" in sys.argv:
        count = int(sys.argv[sys.argv.index("--one") + 1])
        print(json.dumps(run_one(count, "--trace" in sys.argv)))
        return 0
    print(
        f"{'entries':>8} {'seconds':>8} {'pages':>6} {'pdf kB':>8} "
        f"{'RSS peak MB':>12} {'RSS before':>11} {'tracemalloc MB':>15}"
    )
    ok = True
    for count in SIZES:
        timed = _child(count, trace=False)
        traced = _child(count, trace=True)
        print(
            f"{count:>8} {timed['seconds']:>8.2f} {timed['pages']:>6.0f} "
            f"{timed['pdf_kb']:>8.0f} {timed['rss_peak_mb']:>12.1f} "
            f"{timed['rss_before_mb']:>11.1f} {traced['traced_peak_mb']:>15.1f}"
        )
        if count == SIZES[-1]:
            ok = timed["seconds"] < TARGET_SECONDS and timed["rss_peak_mb"] < TARGET_MB
    verdict = "within" if ok else "OUTSIDE"
    print(
        f"{verdict} target: {SIZES[-1]} entries < {TARGET_SECONDS:.0f} s, "
        f"< {TARGET_MB:.0f} MB peak RSS (cpus: {os.cpu_count()})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
