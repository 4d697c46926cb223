"""How fast attachments get a verdict: our clamd client against ``clamdscan --stream``.

Starts its own clamd (our runner, test signatures, temp folder), then scans random
files of 100 kB, 1 MB and 10 MB one after another and prints throughput (MB/s) and
verdict latency (p50/p95). Every round uses different bytes, so clamd's cache of
clean files never answers for it.

Run from the repository root: ``.venv/bin/python -m bench.scan_bench [--rounds N]``.
:func:`measure` takes any async scan callable, so a later variant can time the whole
path through the bridge's HTTP API the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bots.scanner.clamd_runner import ClamdProcess
from bots.scanner.verdict import Clean

T = TypeVar("T")
SIZES = (100_000, 1_000_000, 10_000_000)
MAX_UPLOAD = 12 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measurement:
    """Latencies of sequential scans of ``size``-byte files."""

    label: str
    size: int
    latencies: tuple[float, ...]

    @property
    def throughput(self) -> float:
        """Megabytes (10^6 bytes) scanned per second of wall time."""
        return self.size * len(self.latencies) / sum(self.latencies) / 1e6

    def percentile(self, p: float) -> float:
        """Latency at percentile ``p`` (0-100) in seconds."""
        ordered = sorted(self.latencies)
        if len(ordered) == 1:
            return ordered[0]
        return statistics.quantiles(ordered, n=100, method="inclusive")[int(p) - 1]


async def measure(
    label: str,
    scan: Callable[[T], Awaitable[object]],
    items: Sequence[T],
    size: int,
    *,
    warmup: int = 1,
) -> Measurement:
    """Time ``scan(item)`` for each item in turn, after ``warmup`` untimed calls."""
    for item in items[:warmup]:
        await scan(item)
    latencies = []
    for item in items[warmup:]:
        started = time.perf_counter()
        await scan(item)
        latencies.append(time.perf_counter() - started)
    return Measurement(label, size, tuple(latencies))


def payloads(size: int, count: int) -> list[bytes]:
    """``count`` different random files of ``size`` bytes (no cache hits)."""
    return [os.urandom(size) for _ in range(count)]


def clamdscan_config(clamd: ClamdProcess, folder: Path) -> Path:
    """A clamd.conf for clamdscan that reaches our clamd over TCP only."""
    path = folder / "clamdscan.conf"
    path.write_text(f"TCPSocket {clamd.port}\nTCPAddr 127.0.0.1\n", "ascii")
    return path


def clamdscan_scanner(config: Path) -> Callable[[Path], Awaitable[object]]:
    """An async scan callable that runs ``clamdscan --stream`` on a file."""

    async def scan(path: Path) -> object:
        process = await asyncio.create_subprocess_exec(
            "clamdscan",
            f"--config-file={config}",
            "--stream",
            "--no-summary",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:  # 0 = clean; anything else spoils the numbers
            raise RuntimeError(f"clamdscan exited {process.returncode}: {output!r}")
        return output

    return scan


def client_scanner(
    clamd: ClamdProcess, transport: str
) -> Callable[[bytes], Awaitable[object]]:
    """An async scan callable through our client; insists on a Clean verdict."""
    client = clamd.client(transport=transport)

    async def scan(data: bytes) -> object:
        verdict = await client.scan(data)
        if verdict != Clean():
            raise RuntimeError(f"random data was not clean: {verdict}")
        return verdict

    return scan


def report(rows: list[tuple[Measurement, Measurement | None]]) -> str:
    """A table with MB/s, p50 and p95 in ms, and the speed ratio to clamdscan."""
    lines = [
        f"{'size':>9}  {'path':<22} {'MB/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'vs clamdscan':>12}"
    ]
    for row, baseline in rows:
        ratio = f"{row.throughput / baseline.throughput:.2f}x" if baseline else ""
        lines.append(
            f"{row.size:>9}  {row.label:<22} {row.throughput:>8.1f} "
            f"{row.percentile(50) * 1e3:>8.1f} {row.percentile(95) * 1e3:>8.1f} "
            f"{ratio:>12}"
        )
    return "\n".join(lines)


async def run(rounds: int, sizes: Sequence[int]) -> str:
    """Start clamd, measure every size on every path, stop clamd; return the table."""
    with tempfile.TemporaryDirectory(prefix="scan-bench-") as tmp:
        folder = Path(tmp)
        async with ClamdProcess(folder / "clamd", max_upload_size=MAX_UPLOAD) as clamd:
            clamdscan = clamdscan_scanner(clamdscan_config(clamd, folder))
            rows: list[tuple[Measurement, Measurement | None]] = []
            for size in sizes:
                count = max(3, rounds if size < 5_000_000 else rounds // 3)
                data = payloads(size, count + 1)
                files = []
                for index, content in enumerate(data):
                    files.append(folder / f"{size}-{index}.bin")
                    files[-1].write_bytes(content)
                baseline = await measure(
                    "clamdscan --stream tcp", clamdscan, files, size
                )
                rows.append((baseline, None))
                for transport in ("tcp", "unix"):
                    # The same sizes and kind of bytes, but a new prefix per path,
                    # so that clamd's cache of clean files cannot answer.
                    data = [os.urandom(16) + content[16:] for content in data]
                    label = f"ClamdClient {transport}"
                    scan = client_scanner(clamd, transport)
                    rows.append((await measure(label, scan, data, size), baseline))
                for path in files:
                    path.unlink()
    return report(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="scans per size")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="file sizes in bytes"
    )
    args = parser.parse_args()
    print(asyncio.run(run(args.rounds, args.sizes)))


if __name__ == "__main__":
    main()
