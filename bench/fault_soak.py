"""Soak: the fault-injection traffic of tests/faults at full size (by default
10,000 messages each way), with a clean restart, a killed bridge, a killed
Synapse and both killed, repeated until the traffic is through; prints the
counts (lost, twice, out of order) as JSON.

    .venv/bin/python bench/fault_soak.py [--messages 10000] [--cases 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.stack import make_stack  # noqa: E402
from tests.faults.traffic import (  # noqa: E402
    Traffic,
    kill_round,
    totals,
)


async def soak(messages: int, cases: int, base: Path) -> dict[str, object]:
    stack = make_stack(base)
    stack.start()
    try:
        traffic = Traffic(stack)
        await traffic.login_staff()
        await traffic.open_cases(cases)
        done = asyncio.Event()
        rounds = 0

        async def faults() -> None:
            nonlocal rounds
            while not done.is_set():
                rounds += 1
                await kill_round(stack, clean_restart=True, pause=20)

        started = time.monotonic()
        writers = [
            asyncio.create_task(traffic.citizen_writes(c, messages // cases, 0.01))
            for c in traffic.cases
        ]
        writers.append(asyncio.create_task(traffic.staff_writes(messages, 0.01)))
        chaos = asyncio.create_task(faults())
        await asyncio.gather(*writers)
        done.set()
        await chaos
        tallies = await traffic.settle(within=600)
        return {
            "seconds": round(time.monotonic() - started),
            "fault_rounds": rounds,
            "citizen_retries": traffic.citizen_retries,
            "staff_sends_failed": traffic.staff_uncertain,
            **totals(tallies),
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument(
        "--keep",
        type=Path,
        help="run in this (new) folder and keep it: logs and databases to look at",
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        result = asyncio.run(soak(args.messages, args.cases, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bc-soak-") as tmp:
            result = asyncio.run(soak(args.messages, args.cases, Path(tmp)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
