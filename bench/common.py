"""What the benches share: a fresh stack for one run, and a citizen's chat."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.e2e.stack import Stack, make_stack

T = TypeVar("T")


def on_fresh_stack(
    prefix: str, run: Callable[[Stack], Coroutine[Any, Any, T]], **stack: Any
) -> T:
    """Start the product in a temporary folder (``make_stack``'s arguments),
    run the bench against it, stop it and remove the folder."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    started = make_stack(base, **stack)
    try:
        started.start()
        return asyncio.run(run(started))
    finally:
        started.stop()
        shutil.rmtree(base, ignore_errors=True)


async def open_chat(
    session: aiohttp.ClientSession,
    stack: Stack,
    name: str = "Bench",
    department: str = "buergerbuero",
) -> dict[str, Any]:
    """A citizen's ``POST /api/v1/cases``: case id, reference, token."""
    async with session.post(
        f"{stack.bridge_url}/api/v1/cases",
        json={"department": department, "consent": True, "name": name},
    ) as response:
        if response.status != 201:
            raise RuntimeError(
                f"POST /cases: {response.status} {await response.text()}"
            )
        answer: dict[str, Any] = await response.json()
        return answer


def stack_processes(root: int) -> list[int]:
    """``root`` and every process below it (the stack's Synapse, bridge, clamd)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [root]
    for pid in found:
        found += [child for child, parent in parents.items() if parent == pid]
    return found


def cpu_seconds(pids: list[int]) -> dict[str, float]:
    """CPU time (user + system) used so far, summed as ``synapse`` (its
    processes) and ``bridge`` (the rest: bridge, bots, supervisor)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"synapse": 0.0, "bridge": 0.0}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"clamd" in command:
            continue
        part = "synapse" if b"synapse" in command else "bridge"
        used[part] += (int(stat[11]) + int(stat[12])) / tick
    return used
