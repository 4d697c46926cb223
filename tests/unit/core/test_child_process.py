"""Starting a child process: a one-shot child that did its work and exited is
up, not failed; one that exited without doing it is a failure with its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bridge.supervisor import ChildFailed, ChildProcess


async def test_a_one_shot_child_that_did_its_work_and_exited_is_ready(
    tmp_path: Path,
) -> None:
    """The key generator writes its file and exits with 0 before the first
    look (CI saw 'exited with code 0 while starting'): that is success."""
    key = tmp_path / "signing.key"
    child = ChildProcess(
        "keygen",
        [sys.executable, "-c", f"open({str(key)!r}, 'w').write('k')"],
        tmp_path / "keygen.log",
    )

    async def written() -> bool:
        return key.exists()

    await child.start(written, timeout=30)
    await child.stop()
    assert key.read_text() == "k"


async def test_a_child_that_exits_without_its_work_fails_with_its_log(
    tmp_path: Path,
) -> None:
    child = ChildProcess(
        "broken",
        [sys.executable, "-c", "print('no config'); raise SystemExit(3)"],
        tmp_path / "broken.log",
    )

    async def never() -> bool:
        return False

    with pytest.raises(ChildFailed, match="exited with code 3") as failed:
        await child.start(never, timeout=30)
    assert "no config" in str(failed.value)
