"""Time and peak memory of PDF transcript rendering for 100, 1,000 and 10,000 entries.

Run as ``python bench/transcript_bench.py``. Each size runs in a fresh
subprocess so the peak RSS (ru_maxrss) belongs to that size alone; a second
run per size measures Python's own peak allocation with tracemalloc, which
slows rendering, so its time is not the one reported.
Targets: 10,000 entries in < 10 s and < 200 MB peak.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bots.transcript import render_pdf, sample  # noqa: E402

SIZES = (100, 1_000, 10_000)
TARGET_SECONDS, TARGET_MB = 10.0, 200.0


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(count: int, trace: bool) -> dict[str, float]:
    """Render `count` entries (a photo every 200, a file every 50, an event
    every 25) once in this process and report the figures."""
    entries = sample.bulk(count)
    case = sample.case(entries)
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
