"""Child processes the run command owns (Synapse, clamd): started, watched,
stopped cleanly with SIGTERM and, if they linger, SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path

import aiohttp

from .errors import BuergerchatError
from .retries import backoff
from .tasks import cancel

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
            exited = self.process.returncode is not None
            # Ready first: a one-shot child (the key generator) may have done its
            # work and exited with 0 between two looks.
            if await ready():
                log.info("%s is up (pid %d)", self.name, self.process.pid)
                return
            if exited:
                raise ChildFailed(
                    f"{self.name} exited with code {self.process.returncode} while "
                    f"starting. Its log: {self.log_file}\n{self.tail()}"
                )
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

    async def wait(self) -> int | None:
        """Wait until the process exits; its return code."""
        if self.process is None:
            return None
        return await self.process.wait()

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


def describe_exit(code: int | None) -> str:
    """ "code 1", or "killed by SIGKILL" for a negative return code."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


#: Restart delays grow 1 s, 2 s, 4 s … up to a minute; a child that ran this long
#: counts as healthy again and the next restart is quick.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0
#: After this many restarts in a row without a stable run, the admins are told.
ALERT_AFTER = 3

Alert = Callable[[str], Awaitable[object]]


class Keeper:
    """Keeps a child process running: when it dies, it is started again with
    backoff, each restart is logged with the reason, and after ``ALERT_AFTER``
    failed or short-lived runs in a row ``alert`` (the admin room) is told."""

    def __init__(
        self,
        name: str,
        *,
        start: Callable[[], Awaitable[None]],
        wait: Callable[[], Awaitable[int | None]],
        on_restart: Callable[[], Awaitable[None]] | None = None,
        on_death: Callable[[], object] | None = None,
        alert: Alert | None = None,
    ) -> None:
        self.name = name
        self._start = start
        self._wait = wait
        self._on_restart = on_restart
        self._on_death = on_death
        self.alert = alert
        self.restarts = 0
        self.up = True
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"keep-{self.name}")

    async def stop(self) -> None:
        """Stop watching (before the child is stopped on purpose)."""
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        streak = 0
        while True:
            started = loop.time()
            code = await self._wait()
            self.up = False
            if self._on_death is not None:
                self._on_death()
            if loop.time() - started >= STABLE_AFTER_S:
                streak = 0
            while True:
                streak += 1
                delay = backoff(
                    streak,
                    base=timedelta(seconds=FIRST_BACKOFF_S),
                    cap=timedelta(seconds=MAX_BACKOFF_S),
                ).total_seconds()
                log.warning(
                    "%s died (%s); restarting it in %.0f s (restart %d)",
                    self.name,
                    describe_exit(code),
                    delay,
                    self.restarts + 1,
                )
                if streak == ALERT_AFTER:
                    await self._tell(
                        f"{self.name} ist {streak}-mal hintereinander ausgefallen "
                        f"({describe_exit(code)}); Bürgerchat startet es weiter neu. "
                        "Bitte das Protokoll prüfen."
                    )
                await asyncio.sleep(delay)
                try:
                    await self._start()
                except Exception as e:
                    log.error("restarting %s failed: %s", self.name, e)
                    code = None
                    continue
                break
            self.restarts += 1
            self.up = True
            log.warning("%s restarted (restart %d)", self.name, self.restarts)
            if self._on_restart is not None:
                try:
                    await self._on_restart()
                except Exception:
                    log.exception("after restarting %s", self.name)

    async def _tell(self, text: str) -> None:
        if self.alert is None:
            return
        try:
            await self.alert(text)
        except Exception:
            log.exception("could not alert the admins about %s", self.name)


async def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s: a child's readiness probe."""
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=2)
        ) as session:
            async with session.get(url) as response:
                return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
