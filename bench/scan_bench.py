"""Attachment verdicts through the bridge, against ``clamdscan --stream``.

Starts one product stack (``buergerchat run``: Synapse with our media module, bridge,
scanner bot with its embedded clamd) in a temporary folder, opens a case and, one
file at a time, measures for 100 kB, 1 MB and 10 MB files:

* **clamdscan --stream**: ClamAV's own client, streaming the file to the stack's
  clamd (its unix socket) — the baseline;
* **ClamdClient unix**: our INSTREAM client alone, to the same clamd;
* **bridge HTTP API**: the citizen's ``POST /api/v1/cases/{id}/attachments``
  (multipart) until its ``201 delivered`` answer: allow-list, file held on disk
  (fsync), SHA-256, clamd scan, upload to Synapse (whose module asks the same clamd
  again) and the ``m.file`` event in the case room.

Files are PDF-shaped (so the allow-list takes them) with random bodies; every file is
new to clamd, since it caches verdicts on clean files by hash. Prints throughput
(MB/s), verdict latency p50/p95 and the speed ratio to clamdscan.

Run from the repository root: ``.venv/bin/python -m bench.scan_bench [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.verdict import Clean
from tests.e2e.stack import Stack, make_stack

T = TypeVar("T")
SIZES = (100_000, 1_000_000, 10_000_000)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=120)


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


def pdf_like(size: int) -> bytes:
    """``size`` bytes the allow-list takes for a PDF, with a random body."""
    head, tail = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", b"\n%%EOF\n"
    return head + os.urandom(size - len(head) - len(tail)) + tail


def payloads(size: int, count: int) -> list[bytes]:
    """``count`` different files of ``size`` bytes (no cache hits)."""
    return [pdf_like(size) for _ in range(count)]


def clamdscan_config(socket: Path, folder: Path) -> Path:
    """A clamd.conf for clamdscan that reaches the stack's clamd socket."""
    path = folder / "clamdscan.conf"
    path.write_text(f"LocalSocket {socket}\n", "ascii")
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


def client_scanner(client: ClamdClient) -> Callable[[bytes], Awaitable[object]]:
    """An async scan callable through our client; insists on a Clean verdict."""

    async def scan(data: bytes) -> object:
        verdict = await client.scan(data)
        if verdict != Clean():
            raise RuntimeError(f"random data was not clean: {verdict}")
        return verdict

    return scan


def bridge_uploader(
    session: aiohttp.ClientSession, stack: Stack, case: dict[str, Any]
) -> Callable[[bytes], Awaitable[object]]:
    """An async callable that sends a file as the widget does and insists on
    ``201 delivered`` (scanned clean and posted in the case room)."""
    url = f"{stack.bridge_url}/api/v1/cases/{case['case_id']}/attachments"
    headers = {"Authorization": f"Bearer {case['token']}"}

    async def send(data: bytes) -> object:
        form = aiohttp.FormData()
        form.add_field(
            "file", data, filename="Antrag.pdf", content_type="application/pdf"
        )
        async with session.post(url, data=form, headers=headers) as response:
            body = await response.json()
        if response.status != 201 or body.get("state") != "delivered":
            raise RuntimeError(f"bridge answered {response.status}: {body}")
        return body

    return send


async def open_case(session: aiohttp.ClientSession, stack: Stack) -> dict[str, Any]:
    async with session.post(
        f"{stack.bridge_url}/api/v1/cases",
        json={"department": "buergerbuero", "consent": True, "name": "Bench"},
    ) as response:
        body: dict[str, Any] = await response.json()
        if response.status != 201:
            raise RuntimeError(f"could not open a case: {response.status} {body}")
        return body


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


async def bench(stack: Stack, rounds: int, sizes: Sequence[int], folder: Path) -> str:
    """Measure every size on every path against the running stack."""
    socket = stack.data_dir / "clamd" / "clamd.sock"
    clamdscan = clamdscan_scanner(clamdscan_config(socket, folder))
    client = client_scanner(ClamdClient(unix_socket=socket, scan_timeout=120))
    rows: list[tuple[Measurement, Measurement | None]] = []
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        bridge = bridge_uploader(session, stack, await open_case(session, stack))
        for size in sizes:
            count = max(3, rounds if size < 5_000_000 else rounds // 3)
            files = []
            for index, content in enumerate(payloads(size, count + 1)):
                files.append(folder / f"{size}-{index}.pdf")
                files[-1].write_bytes(content)
            baseline = await measure("clamdscan --stream", clamdscan, files, size)
            rows.append((baseline, None))
            for label, scan in (
                ("ClamdClient unix", client),
                ("bridge HTTP API", bridge),
            ):
                # Same size and structure, new bytes: clamd's cache cannot answer.
                data = payloads(size, count + 1)
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
    if max(args.sizes) > 20 << 20:
        parser.error("the stack accepts files up to 20 MB (max_upload_size_mb)")
    base = Path(tempfile.mkdtemp(prefix="bc-scan-bench-"))
    stack = make_stack(base)
    try:
        began = time.perf_counter()
        stack.start()
        print(f"Stack up in {time.perf_counter() - began:.1f} s.", flush=True)
        print(asyncio.run(bench(stack, args.rounds, args.sizes, base)))
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
