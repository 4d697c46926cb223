"""Run a real clamd as a child process, for the local run, the tests and the bench.

There is no signature download here (no freshclam, no internet), so clamd gets a
signature folder of our own: hash signatures of the EICAR test string and of the
samples in Debian's ``clamav-testfiles``. Production points clamd at freshclam's
databases instead (``signature_dir``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.verdict import ScanError
from bridge.supervisor import die_with_parent

log = logging.getLogger(__name__)

TESTFILES_DIR = Path("/usr/share/clamav-testfiles")
SIGNATURE_FILE = "buergerchat-test.hdb"
EICAR_SIGNATURE = "Buergerchat.Test.EICAR"
# clamd ends names from unsigned databases with this; it is part of what it reports.
UNOFFICIAL = ".UNOFFICIAL"
# clamd reads sizes as 32-bit values; a chat upload is far below this anyway.
MAX_UPLOAD_LIMIT = 1024**3
# clamd's own time limit per file (MaxScanTime). It stays below the client's default
# scan_timeout, so a pathological file ends in clamd's Heuristics.Limits.Exceeded
# verdict rather than in endless client timeouts and retries.
MAX_SCAN_TIME_S = 30
# sun_path in struct sockaddr_un holds 108 bytes including the final NUL.
_MAX_UNIX_PATH = 107

# The EICAR test string in two halves, so that this source file (and its .pyc) is
# not itself reported by scanners that look at the repository.
_EICAR_HEAD = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR"
_EICAR_TAIL = "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class ClamdStartError(RuntimeError):
    """clamd is missing, misconfigured or did not come up; the message says why."""


def eicar() -> bytes:
    """The 68-byte EICAR test string that every scanner must report."""
    return (_EICAR_HEAD + _EICAR_TAIL).encode("ascii")


def find_clamd(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of the clamd binary; a ClamdStartError says how to install it."""
    candidates = [explicit] if explicit else [shutil.which("clamd"), "/usr/sbin/clamd"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ClamdStartError(
        f"clamd not found (looked for {explicit or 'clamd on PATH and /usr/sbin'}); "
        "install it with: apt-get install clamav-daemon"
    )


@dataclass(frozen=True, slots=True)
class ClamdLimits:
    """clamd's size limits, derived from one upload limit so they never disagree."""

    stream_max_length: int
    max_file_size: int
    max_scan_size: int

    @classmethod
    def for_upload(cls, max_upload_size: int) -> ClamdLimits:
        """Limits such that max_upload_size <= StreamMaxLength <= MaxFileSize."""
        if not 0 < max_upload_size <= MAX_UPLOAD_LIMIT:
            raise ValueError(
                f"max_upload_size must be between 1 and {MAX_UPLOAD_LIMIT} bytes, "
                f"not {max_upload_size}"
            )
        # MaxScanSize counts unpacked data too: an office file or zip expands, and
        # with AlertExceedsMax a file past the limit is reported, not passed.
        return cls(
            stream_max_length=max_upload_size,
            max_file_size=max_upload_size,
            max_scan_size=4 * max_upload_size,
        )


def signature_lines(testfiles_dir: Path = TESTFILES_DIR) -> list[str]:
    """``.hdb`` lines (md5:size:name, as ``sigtool --md5`` writes) for our samples."""
    lines = [_hdb_line(eicar(), EICAR_SIGNATURE)]
    if testfiles_dir.is_dir():
        for sample in sorted(testfiles_dir.iterdir()):
            if sample.is_file():
                lines.append(_hdb_line(sample.read_bytes(), f"Test.{sample.name}"))
    else:
        log.warning(
            "%s is missing, only EICAR will be detected; "
            "apt-get install clamav-testfiles",
            testfiles_dir,
        )
    return lines


def _hdb_line(data: bytes, name: str) -> str:
    # Same format as `sigtool --md5 FILE`, computed here so that no EICAR file has
    # to be written to disk first; a test checks the two agree.
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}"


def write_signatures(signature_dir: Path, testfiles_dir: Path = TESTFILES_DIR) -> Path:
    """Write our test signature database into ``signature_dir``; return its path."""
    signature_dir.mkdir(parents=True, exist_ok=True)
    path = signature_dir / SIGNATURE_FILE
    path.write_text("\n".join(signature_lines(testfiles_dir)) + "\n", "ascii")
    return path


def render_config(
    *,
    data_dir: Path,
    signature_dir: Path,
    limits: ClamdLimits,
    tcp_port: int | None,
    unix_socket: Path | None,
) -> str:
    """clamd.conf text for a clamd that lives entirely in ``data_dir``."""
    lines = [
        "# Written by bots.scanner.clamd_runner; rewritten at every start.",
        # The runner owns the process, so clamd must not daemonize.
        "Foreground yes",
        f"LogFile {data_dir / 'clamd.log'}",
        "LogTime yes",
        f"DatabaseDirectory {signature_dir}",
        f"TemporaryDirectory {data_dir / 'tmp'}",
        # No PidFile: the runner knows the pid, and a stale file would only mislead.
        # No User: as root, clamd then stays root and can read the root-owned data
        # folder; dropping to "clamav" would lock it out of it.
        f"StreamMaxLength {limits.stream_max_length}",
        f"MaxFileSize {limits.max_file_size}",
        f"MaxScanSize {limits.max_scan_size}",
        f"MaxScanTime {MAX_SCAN_TIME_S * 1000}",
        # Fail closed: a file clamd could not scan completely is reported, not OK.
        "AlertExceedsMax yes",
    ]
    if tcp_port is not None:
        lines += [f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"]
    if unix_socket is not None:
        lines += [f"LocalSocket {unix_socket}", "LocalSocketMode 600"]
    return "\n".join(lines) + "\n"


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ClamdProcess:
    """One clamd child process with its config, log and sockets in ``data_dir``.

    ``tcp_port=0`` picks a free port, ``None`` disables TCP; ``unix_socket=True``
    listens on ``data_dir/clamd.sock``. ``signature_dir=None`` writes our own test
    signatures to ``data_dir/signatures``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        max_upload_size: int,
        tcp_port: int | None = 0,
        unix_socket: bool = True,
        signature_dir: Path | None = None,
        clamd_binary: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if tcp_port is None and not unix_socket:
            raise ValueError("clamd needs a TCP port, a unix socket or both")
        self.data_dir = Path(data_dir).resolve()
        self.limits = ClamdLimits.for_upload(max_upload_size)
        self._tcp_port = tcp_port
        self.unix_socket = self.data_dir / "clamd.sock" if unix_socket else None
        self._own_signatures = signature_dir is None
        self.signature_dir = (
            Path(signature_dir) if signature_dir else self.data_dir / "signatures"
        )
        self._clamd_binary = clamd_binary
        self.start_timeout = start_timeout
        self.config_path = self.data_dir / "clamd.conf"
        self.log_path = self.data_dir / "clamd.log"
        self.output_path = self.data_dir / "clamd.out"
        self.port: int | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def client(
        self,
        *,
        transport: str = "tcp",
        connect_timeout: float = 5.0,
        scan_timeout: float = 60.0,
    ) -> ClamdClient:
        """A client for this clamd over ``"tcp"`` or ``"unix"``."""
        if transport == "unix" and self.unix_socket is not None:
            address: dict[str, Any] = {"unix_socket": self.unix_socket}
        elif transport == "tcp" and self.port is not None:
            address = {"host": "127.0.0.1", "port": self.port}
        else:
            raise ValueError(f"this clamd does not listen on {transport!r} (started?)")
        return ClamdClient(
            **address,
            connect_timeout=connect_timeout,
            scan_timeout=scan_timeout,
            max_stream_length=self.limits.stream_max_length,
        )

    async def start(self) -> None:
        """Write config and signatures, start clamd and wait until it answers PING."""
        if self.running:
            raise ClamdStartError(f"clamd (pid {self.pid}) is already running")
        binary = find_clamd(self._clamd_binary)
        if self.unix_socket and len(os.fsencode(self.unix_socket)) > _MAX_UNIX_PATH:
            raise ClamdStartError(
                f"unix socket path {self.unix_socket} is longer than {_MAX_UNIX_PATH} "
                "bytes; use a shorter data folder"
            )
        self.port = free_tcp_port() if self._tcp_port == 0 else self._tcp_port
        output = await asyncio.to_thread(self._prepare_files)
        with output:
            self._process = await asyncio.create_subprocess_exec(
                binary,
                f"--config-file={self.config_path}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                # Ctrl-C reaches only us; we then stop clamd in order.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        log.info("started clamd pid %s with %s", self.pid, self.config_path)
        try:
            await self._wait_until_ready()
        except BaseException:
            await self.stop()
            raise

    def _prepare_files(self) -> BinaryIO:
        """Write config and signatures; return clamd's opened output file."""
        (self.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        if self._own_signatures:
            write_signatures(self.signature_dir)
        elif not self.signature_dir.is_dir():
            raise ClamdStartError(f"signature folder {self.signature_dir} is missing")
        if self.unix_socket is not None:
            # A socket file left by a killed clamd makes the new one fail to bind.
            self.unix_socket.unlink(missing_ok=True)
        self.config_path.write_text(
            render_config(
                data_dir=self.data_dir,
                signature_dir=self.signature_dir,
                limits=self.limits,
                tcp_port=self.port,
                unix_socket=self.unix_socket,
            ),
            "utf-8",
        )
        return open(self.output_path, "ab")

    async def _wait_until_ready(self) -> None:
        assert self._process is not None
        transport = "tcp" if self.port is not None else "unix"
        probe = self.client(transport=transport, connect_timeout=1.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            if self._process.returncode is not None:
                tail = await asyncio.to_thread(self._log_tail)
                raise ClamdStartError(
                    f"clamd exited with code {self._process.returncode} while "
                    f"starting; see {self.log_path} and {self.output_path}{tail}"
                )
            try:
                await probe.ping()
                return
            except ScanError:
                if loop.time() > deadline:
                    tail = await asyncio.to_thread(self._log_tail)
                    raise ClamdStartError(
                        f"clamd did not answer PING within {self.start_timeout:g} s; "
                        f"see {self.log_path} and {self.output_path}{tail}"
                    ) from None
            await asyncio.sleep(0.1)

    def _log_tail(self, lines: int = 3) -> str:
        """The last lines of clamd's output, so the error shows the cause at once."""
        tail: list[str] = []
        for path in (self.log_path, self.output_path):
            with contextlib.suppress(OSError):
                text = path.read_text("utf-8", "replace").strip()
                tail += [f"  {line}" for line in text.splitlines()[-lines:]]
        return ":\n" + "\n".join(tail) if tail else ""

    async def wait(self) -> int:
        """Wait until clamd exits, for a supervisor; return its exit code."""
        if self._process is None:
            raise ClamdStartError("clamd was not started")
        return await self._process.wait()

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Safe to repeat.

        Returns clamd's exit code (negative: killed by that signal), or None if
        nothing was running.
        """
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                log.warning("clamd pid %s ignored SIGTERM; killing it", process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            except BaseException:
                # Cancelled while waiting: never leave an orphaned clamd behind.
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                raise
        log.info("clamd pid %s stopped with code %s", process.pid, process.returncode)
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)
        return process.returncode

    async def __aenter__(self) -> ClamdProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
