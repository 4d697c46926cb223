"""Ask clamd for a verdict on a byte string, over TCP or a unix socket.

This speaks clamd's INSTREAM protocol directly with asyncio streams instead of using
the sync ``pyclamd`` in a thread: pyclamd 0.4 returns ``None`` (its "no virus") when
clamd closes the connection without an answer or answers something it does not know,
so a crashed or foreign server would pass files as clean. It also uses ``send()``
instead of ``sendall()`` for the chunk framing and retries a timed-out ``recv`` five
times. Here every answer other than ``stream: OK`` or ``stream: <name> FOUND`` raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.scanner.verdict import (
    Clean,
    Infected,
    ScanError,
    ScanTimeout,
    ScanTooLarge,
    ScanUnavailable,
    Verdict,
)

# clamd answers INSTREAM with "stream: OK" or "stream: <signature> FOUND".
_FOUND = re.compile(r"stream: (?P<signature>\S+) FOUND")
_SIZE_LIMIT = "INSTREAM size limit exceeded. ERROR"
# Answers are one short line; a longer one is not clamd.
_MAX_ANSWER = 4096


def address_problem(address: str) -> str | None:
    """What is wrong with a clamd address, or None for ``tcp://host:port`` and
    ``unix:/absolute/path``."""
    if address.startswith("unix:/"):
        return None
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if (
        address.startswith("tcp://")
        and host
        and port.isdigit()
        and 0 < int(port) < 65536
    ):
        return None
    return "must be 'tcp://host:port' or 'unix:/path/to/clamd.sock'"


@dataclass(frozen=True, slots=True)
class ClamdClient:
    """Where clamd listens and how long to wait for it.

    Give either ``host`` and ``port`` or ``unix_socket``. ``connect_timeout`` bounds
    the connection (and a whole PING); ``scan_timeout`` bounds one whole scan from
    connecting to the verdict. ``max_stream_length`` (clamd's ``StreamMaxLength``),
    when known, refuses longer input before a byte is sent.
    """

    host: str | None = None
    port: int | None = None
    unix_socket: Path | None = None
    connect_timeout: float = 5.0
    scan_timeout: float = 60.0
    chunk_size: int = 256 * 1024
    max_stream_length: int | None = None

    def __post_init__(self) -> None:
        tcp = self.host is not None and self.port is not None
        if tcp == (self.unix_socket is not None):
            raise ValueError("give either host and port or unix_socket for clamd")
        if self.connect_timeout <= 0 or self.scan_timeout <= 0:
            raise ValueError("clamd timeouts must be positive")
        if not 0 < self.chunk_size < 2**32:
            raise ValueError("chunk_size must fit INSTREAM's 4-byte length")

    @classmethod
    def from_address(cls, address: str, **options: Any) -> ClamdClient:
        """A client for ``tcp://host:port`` or ``unix:/path/to/clamd.sock``, the form
        of ``scanner.clamd`` in buergerchat.yaml and of the Synapse module's config."""
        problem = address_problem(address)
        if problem:
            raise ValueError(f"clamd address {address!r} {problem}")
        if address.startswith("unix:"):
            return cls(unix_socket=Path(address[5:]), **options)
        host, _, port = address.removeprefix("tcp://").rpartition(":")
        return cls(host=host.strip("[]"), port=int(port), **options)

    @property
    def address(self) -> str:
        """Human-readable address for messages and logs."""
        if self.unix_socket is not None:
            return f"unix:{self.unix_socket}"
        return f"{self.host}:{self.port}"

    async def ping(self) -> None:
        """Check that clamd answers PING with PONG; raise a ScanError otherwise."""
        answer = await self._command(b"zPING\0")
        if answer != "PONG":
            raise ScanError(f"clamd at {self.address} answered PING with {answer!r}")

    async def version(self) -> str:
        """clamd's version line, e.g. ``ClamAV 1.4.6/27000/...``."""
        answer = await self._command(b"zVERSION\0")
        if not answer.startswith("ClamAV "):
            raise ScanError(f"clamd at {self.address} answered VERSION oddly")
        return answer

    async def scan(self, data: bytes | bytearray | memoryview) -> Verdict:
        """Scan ``data`` with INSTREAM; Clean or Infected, else a ScanError."""
        if self.max_stream_length is not None and len(data) > self.max_stream_length:
            raise ScanTooLarge(
                f"{len(data)} bytes are more than clamd's StreamMaxLength of "
                f"{self.max_stream_length}; lower max_upload_size or raise the limit"
            )
        try:
            async with asyncio.timeout(self.scan_timeout):
                answer = await self._instream(memoryview(data).cast("B"))
        except TimeoutError:
            raise ScanTimeout(
                f"clamd at {self.address} gave no verdict within "
                f"{self.scan_timeout:g} s; the file stays held"
            ) from None
        return self._verdict(answer)

    def _verdict(self, answer: str) -> Verdict:
        if answer == "stream: OK":
            return Clean()
        found = _FOUND.fullmatch(answer)
        if found:
            return Infected(found["signature"])
        if answer == _SIZE_LIMIT:
            raise ScanTooLarge(
                f"clamd at {self.address} refused the file as longer than its "
                "StreamMaxLength; set it at least to max_upload_size"
            )
        raise ScanError(f"clamd at {self.address} gave no verdict: {answer!r}")

    async def _command(self, command: bytes) -> str:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await self._connect()
                try:
                    writer.write(command)
                    await writer.drain()
                    answer = await self._read_answer(reader)
                finally:
                    writer.transport.abort()
        except TimeoutError:
            raise ScanTimeout(
                f"clamd at {self.address} did not answer within "
                f"{self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise ScanUnavailable(
                f"lost the connection to clamd at {self.address}: {exc}"
            ) from exc
        return answer

    async def _instream(self, data: memoryview) -> str:
        reader, writer = await self._connect()
        # Read while writing: clamd answers and hangs up as soon as the stream passes
        # StreamMaxLength, and that answer is lost if we only look after a failed
        # write has reset the connection.
        answer = asyncio.ensure_future(self._read_answer(reader))
        start_of_unsent = 0
        stream_complete = False
        try:
            try:
                writer.write(b"zINSTREAM\0")
                while start_of_unsent < len(data) and not answer.done():
                    end = start_of_unsent + self.chunk_size
                    chunk = data[start_of_unsent:end]
                    writer.write(struct.pack(">I", len(chunk)))
                    writer.write(chunk)
                    start_of_unsent += len(chunk)
                    # Waiting here keeps memory flat and lets a stalled clamd
                    # surface as a timeout instead of a growing buffer; the
                    # sleep lets the reader see an early answer.
                    await writer.drain()
                    await asyncio.sleep(0)
                if not answer.done():
                    writer.write(struct.pack(">I", 0))
                    await writer.drain()
                    stream_complete = True
            except OSError as exc:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answer), 1.0)
                if not answer.done():
                    raise ScanUnavailable(
                        f"clamd at {self.address} dropped the connection during "
                        f"the upload: {exc}"
                    ) from exc
            text = await answer
            if not stream_complete and not text.endswith(" ERROR"):
                # Only an error may come before the end of the stream; a verdict on
                # a part of the file is no verdict on the file.
                raise ScanError(
                    f"the server at {self.address} answered {text!r} before the "
                    "whole file was sent"
                )
            return text
        except OSError as exc:
            raise ScanUnavailable(
                f"lost the connection to clamd at {self.address}: {exc}"
            ) from exc
        finally:
            answer.cancel()
            if answer.done() and not answer.cancelled():
                answer.exception()  # retrieved here, so asyncio does not warn
            # abort, not close: close() would wait for a stalled peer to read.
            writer.transport.abort()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.unix_socket is not None:
                    return await asyncio.open_unix_connection(
                        self.unix_socket, limit=_MAX_ANSWER
                    )
                return await asyncio.open_connection(
                    self.host, self.port, limit=_MAX_ANSWER
                )
        except TimeoutError:
            raise ScanTimeout(
                f"could not connect to clamd at {self.address} within "
                f"{self.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise ScanUnavailable(
                f"cannot reach clamd at {self.address}: {exc}. Is clamd running?"
            ) from exc

    async def _read_answer(self, reader: asyncio.StreamReader) -> str:
        try:
            raw = await reader.readuntil(b"\0")
        except asyncio.IncompleteReadError as exc:
            raise ScanUnavailable(
                f"clamd at {self.address} closed the connection without a complete "
                f"answer (got {exc.partial[:80]!r})"
            ) from None
        except asyncio.LimitOverrunError:
            raise ScanError(
                f"the server at {self.address} sent an answer too long for clamd"
            ) from None
        try:
            return raw[:-1].decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ScanError(
                f"the server at {self.address} sent a non-text answer"
            ) from None
