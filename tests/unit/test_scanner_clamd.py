"""Verdicts from a real clamd, and failing closed when clamd or the network misbehave.

A real clamd (Debian's clamav-daemon) is started once for this module by our runner,
with our own signature folder; misbehaving servers are small local fakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.clamd_runner import ClamdProcess, ClamdStartError, eicar
from bots.scanner.verdict import (
    Clean,
    Infected,
    ScanError,
    ScanTimeout,
    ScanTooLarge,
    ScanUnavailable,
)
from tests import scanner_fixtures as samples

MAX_UPLOAD = 12 * 1024 * 1024
EICAR_NAME = "Buergerchat.Test.EICAR.UNOFFICIAL"


@pytest.fixture(scope="module")
async def clamd(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ClamdProcess]:
    process = ClamdProcess(tmp_path_factory.mktemp("clamd"), max_upload_size=MAX_UPLOAD)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture(params=["tcp", "unix"])
def client(request: pytest.FixtureRequest, clamd: ClamdProcess) -> ClamdClient:
    return clamd.client(transport=request.param)


async def test_eicar_is_infected_with_its_signature_name(client: ClamdClient) -> None:
    """EICAR is reported Infected with our signature's name, over TCP and unix."""
    assert await client.scan(eicar()) == Infected(EICAR_NAME)


@pytest.mark.parametrize(
    ("sample", "signature"),
    [
        ("clam.exe", "Test.clam.exe.UNOFFICIAL"),
        ("clam.zip", "Test.clam.exe.UNOFFICIAL"),
        ("clam.pdf", "Test.clam.pdf.UNOFFICIAL"),
    ],
)
async def test_clamav_testfiles_are_infected(
    client: ClamdClient, sample: str, signature: str
) -> None:
    """Debian's clamav-testfiles are found, inside archives too (clam.zip)."""
    assert await client.scan(samples.testfile(sample)) == Infected(signature)


@pytest.mark.parametrize(
    "make",
    [lambda: samples.image_bytes("PNG"), samples.pdf_bytes, samples.docx_bytes],
    ids=["png", "pdf", "docx"],
)
async def test_ordinary_files_are_clean(
    client: ClamdClient, make: Callable[[], bytes]
) -> None:
    """A real PNG, PDF and docx get the Clean verdict."""
    assert await client.scan(make()) == Clean()


async def test_eicar_inside_a_pdf_sized_upload_is_found(client: ClamdClient) -> None:
    """The verdict covers the whole stream: EICAR in a zip after 5 MB is found."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("padding.bin", b"\0" * 5_000_000)
        archive.writestr("eicar.com", eicar())
    assert await client.scan(buffer.getvalue()) == Infected(EICAR_NAME)


async def test_upload_of_exactly_the_limit_is_scanned(clamd: ClamdProcess) -> None:
    """A file of exactly max_upload_size is scanned, not cut off or flagged."""
    assert await clamd.client().scan(b"\0" * MAX_UPLOAD) == Clean()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_clamd_refuses_one_byte_over_the_limit(
    clamd: ClamdProcess, transport: str
) -> None:
    """clamd itself answers ScanTooLarge past StreamMaxLength (no client check)."""
    unchecked = dataclasses.replace(
        clamd.client(transport=transport), max_stream_length=None
    )
    with pytest.raises(ScanTooLarge):
        await unchecked.scan(b"\0" * (MAX_UPLOAD + 1))


async def test_client_refuses_over_the_limit_without_sending(
    clamd: ClamdProcess,
) -> None:
    """With the limit known, an oversized file fails before any byte is sent."""
    client = dataclasses.replace(clamd.client(), host="192.0.2.1")  # unroutable
    with pytest.raises(ScanTooLarge, match="StreamMaxLength"):
        await client.scan(b"\0" * (MAX_UPLOAD + 1))


async def test_concurrent_scans_get_their_own_verdicts(clamd: ClamdProcess) -> None:
    """Twenty parallel scans, half infected, each get the right verdict."""
    client = clamd.client()
    files = [eicar() if i % 2 else samples.pdf_bytes(f"Seite {i}") for i in range(20)]
    verdicts = await asyncio.gather(*(client.scan(data) for data in files))
    assert verdicts == [Infected(EICAR_NAME) if i % 2 else Clean() for i in range(20)]


async def test_ping_and_version_answer(client: ClamdClient) -> None:
    """PING succeeds and VERSION names ClamAV."""
    await client.ping()
    assert (await client.version()).startswith("ClamAV 1.")


async def test_stopped_clamd_fails_closed(tmp_path: Path) -> None:
    """After stop, scans over TCP and unix raise ScanUnavailable, never Clean."""
    process = ClamdProcess(tmp_path, max_upload_size=1024)
    await process.start()
    clients = [process.client(transport="tcp"), process.client(transport="unix")]
    assert [await c.scan(b"ok") for c in clients] == [Clean(), Clean()]
    pid = process.pid
    await process.stop()
    assert not process.running and pid is not None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    for c in clients:
        with pytest.raises(ScanUnavailable, match="Is clamd running"):
            await c.scan(eicar())


async def test_clamd_that_cannot_start_names_its_log(tmp_path: Path) -> None:
    """An empty signature folder makes clamd exit; the error names the log file."""
    empty = tmp_path / "no-signatures"
    empty.mkdir()
    process = ClamdProcess(tmp_path, max_upload_size=1024, signature_dir=empty)
    with pytest.raises(ClamdStartError, match=str(tmp_path / "clamd.log")) as caught:
        await process.start()
    assert "No supported database files" in str(caught.value)  # the cause, inline
    assert not process.running


# --- misbehaving servers -------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def fake_clamd(handler: Handler) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 running ``handler``; yields its port."""
    tasks: set[asyncio.Task[None]] = set()

    async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Ending a stalled handler is the normal way out; returning keeps
            # asyncio.start_server from logging the cancellation as an error.
            return
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_instream(reader: asyncio.StreamReader) -> int:
    """Read one INSTREAM request to its end; return the number of data bytes."""
    await reader.readuntil(b"\0")
    total = 0
    while size := struct.unpack(">I", await reader.readexactly(4))[0]:
        await reader.readexactly(size)
        total += size
    return total


async def never_answers(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
    await read_instream(reader)
    await asyncio.sleep(3600)


async def never_reads(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_instream(reader)
    writer.close()


def answers(text: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_instream(reader)
        w.write(text)
        await w.drain()
        await asyncio.sleep(3600)

    return handler


async def answers_ok_at_once(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"stream: OK\0")
    await w.drain()
    await asyncio.sleep(3600)


@pytest.mark.parametrize(
    ("handler", "size"),
    [(never_answers, 1000), (never_reads, 16 * 1024 * 1024)],
    ids=["reads-but-never-answers", "never-reads-16MB"],
)
async def test_hung_server_times_out(handler: Handler, size: int) -> None:
    """A server that accepts but stalls ends in ScanTimeout after scan_timeout."""
    async with fake_clamd(handler) as port:
        client = ClamdClient(host="127.0.0.1", port=port, scan_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ScanTimeout, match="0.5 s"):
            await client.scan(b"x" * size)
        assert time.monotonic() - started < 2.0


async def test_hung_server_fails_ping() -> None:
    """PING against a silent server raises ScanTimeout within connect_timeout."""
    async with fake_clamd(never_reads) as port:
        client = ClamdClient(host="127.0.0.1", port=port, connect_timeout=0.3)
        with pytest.raises(ScanTimeout):
            await client.ping()


async def test_connect_that_hangs_times_out_on_connect() -> None:
    """A listener whose backlog is full (SYNs dropped) hits connect_timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(filler)
        await asyncio.sleep(0.1)
        client = ClamdClient(
            host="127.0.0.1", port=port, connect_timeout=0.3, scan_timeout=10
        )
        with pytest.raises(ScanTimeout, match="could not connect .* 0.3 s"):
            await client.scan(b"data")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (hangs_up, ScanUnavailable),
        (answers(b"stream: Something odd happened\0"), ScanError),
        (answers(b"stream: OK"), ScanUnavailable),  # no terminating NUL
        (answers(b"\xff\xfe\0"), ScanError),
        (answers(b"stream: " + b"A" * 10_000 + b" FOUND\0"), ScanError),
        (answers(b"stream: Eicar FOUND ERROR\0"), ScanError),
        (answers_ok_at_once, ScanError),
    ],
    ids=[
        "hangs-up",
        "odd-answer",
        "unterminated-ok",
        "binary",
        "overlong",
        "error",
        "ok-before-upload",
    ],
)
async def test_unexpected_answers_fail_closed(
    handler: Handler, error: type[ScanError]
) -> None:
    """Anything but a proper OK or FOUND raises; pyclamd would say clean here."""
    async with fake_clamd(handler) as port:
        client = ClamdClient(host="127.0.0.1", port=port, scan_timeout=1)
        with pytest.raises(error):
            await client.scan(b"y" * 2_000_000)


async def test_missing_unix_socket_is_unavailable(tmp_path: Path) -> None:
    """A unix socket path with no clamd behind it raises ScanUnavailable."""
    client = ClamdClient(unix_socket=tmp_path / "clamd.sock")
    with pytest.raises(ScanUnavailable):
        await client.scan(b"data")
    with pytest.raises(ScanUnavailable):
        await client.ping()
