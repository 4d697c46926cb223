"""Child processes the run command owns (Synapse, clamd): started, watched,
stopped cleanly with SIGTERM and, if they linger, SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from .errors import BuergerchatError

log = logging.getLogger("buergerchat.supervisor")


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the child gets SIGTERM when the bridge dies, even by SIGKILL or a
    crash, so no Synapse or clamd is left running without its owner."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the orderly stop still covers Ctrl-C and SIGTERM


class ChildFailed(BuergerchatError):
    errcode = "BC_CHILD_FAILED"


class ChildProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.cwd = cwd
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(
        self,
        ready: Callable[[], Awaitable[bool]],
        timeout: float = 60.0,  # noqa: ASYNC109 (startup deadline)
    ) -> None:
        """Start the process and wait until ``ready()`` is true, or fail with the
        log file's last lines."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_file.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd,
                env={**os.environ, **(self.env or {})},
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
                preexec_fn=die_with_parent,
            )
        finally:
            out.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise ChildFailed(
                    f"{self.name} exited with code {self.process.returncode} while "
                    f"starting. Its log: {self.log_file}\n{self.tail()}"
                )
            if await ready():
                log.info("%s is up (pid %d)", self.name, self.process.pid)
                return
            await asyncio.sleep(0.2)
        await self.stop()
        raise ChildFailed(
            f"{self.name} did not answer within {timeout:.0f} s. "
            f"Its log: {self.log_file}\n{self.tail()}"
        )

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, grace: float = 15.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("%s did not stop in %.0f s; killing it", self.name, grace)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await process.wait()
        log.info("%s stopped", self.name)
