"""The clamd runner's config and signatures, checked without starting clamd."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bots.scanner import clamd_runner
from bots.scanner.clamd_client import ClamdClient
from bots.scanner.clamd_runner import (
    ClamdLimits,
    ClamdProcess,
    ClamdStartError,
    eicar,
    find_clamd,
    render_config,
    signature_lines,
)


@pytest.mark.parametrize("upload", [1, 10 * 1024**2, 25_000_000, 1024**3])
def test_limits_keep_upload_below_stream_below_file_size(upload: int) -> None:
    """max_upload_size <= StreamMaxLength <= MaxFileSize <= MaxScanSize always."""
    limits = ClamdLimits.for_upload(upload)
    assert upload <= limits.stream_max_length <= limits.max_file_size
    assert limits.max_file_size <= limits.max_scan_size


@pytest.mark.parametrize("upload", [0, -1, 1024**3 + 1])
def test_limits_refuse_sizes_clamd_cannot_hold(upload: int) -> None:
    """Zero, negative and beyond-32-bit-safe sizes are refused with the value."""
    with pytest.raises(ValueError, match=str(upload)):
        ClamdLimits.for_upload(upload)


def test_config_runs_in_foreground_and_stays_in_its_folder(tmp_path: Path) -> None:
    """The config keeps clamd a child, as root, with every path in the data folder."""
    text = render_config(
        data_dir=tmp_path,
        signature_dir=tmp_path / "sigs",
        limits=ClamdLimits.for_upload(20_000_000),
        tcp_port=3310,
        unix_socket=tmp_path / "clamd.sock",
    )
    settings = dict(
        line.split(" ", 1) for line in text.splitlines() if not line.startswith("#")
    )
    assert settings["Foreground"] == "yes"
    assert settings["TCPAddr"] == "127.0.0.1" and settings["TCPSocket"] == "3310"
    assert settings["LocalSocket"] == str(tmp_path / "clamd.sock")
    assert settings["DatabaseDirectory"] == str(tmp_path / "sigs")
    assert settings["LogFile"] == str(tmp_path / "clamd.log")
    assert settings["StreamMaxLength"] == settings["MaxFileSize"] == "20000000"
    assert settings["AlertExceedsMax"] == "yes"
    # clamd's verdict on a slow file must come before the client gives up.
    assert (
        int(settings["MaxScanTime"]) / 1000
        < ClamdClient(unix_socket=tmp_path).scan_timeout
    )
    assert "User" not in settings and "PidFile" not in settings


def test_config_without_tcp_has_no_tcp_keys(tmp_path: Path) -> None:
    """A unix-socket-only clamd opens no TCP port."""
    text = render_config(
        data_dir=tmp_path,
        signature_dir=tmp_path,
        limits=ClamdLimits.for_upload(1000),
        tcp_port=None,
        unix_socket=tmp_path / "s",
    )
    assert "TCPSocket" not in text and "TCPAddr" not in text


def test_eicar_is_the_standard_test_string() -> None:
    """The rebuilt string has EICAR's well-known length and MD5."""
    assert len(eicar()) == 68
    assert hashlib.md5(eicar()).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


def test_source_file_does_not_contain_eicar_in_one_piece() -> None:
    """The repository file itself does not trip scanners."""
    source = Path(clamd_runner.__file__).read_bytes()
    assert eicar() not in source


def test_signature_lines_match_sigtool(tmp_path: Path) -> None:
    """Our md5:size:name lines are what `sigtool --md5` writes for the same file."""
    sample = tmp_path / "clam.exe"
    sample.write_bytes((clamd_runner.TESTFILES_DIR / "clam.exe").read_bytes())
    sigtool = subprocess.run(
        ["sigtool", "--md5", str(sample)], capture_output=True, text=True, check=True
    ).stdout.strip()
    ours = {line.rsplit(":", 1)[0] for line in signature_lines()}
    assert sigtool.rsplit(":", 1)[0] in ours


def test_signatures_cover_eicar_and_every_testfile() -> None:
    """One line for EICAR plus one per clamav-testfiles sample."""
    testfiles = list(clamd_runner.TESTFILES_DIR.iterdir())
    assert testfiles, "apt-get install clamav-testfiles"
    lines = signature_lines()
    assert lines[0].endswith(":68:Buergerchat.Test.EICAR")
    assert len(lines) == 1 + len(testfiles)


def test_missing_testfiles_still_give_eicar(tmp_path: Path) -> None:
    """Without clamav-testfiles the database still holds EICAR, so clamd starts."""
    assert signature_lines(tmp_path / "absent") == [signature_lines()[0]]


def test_missing_clamd_says_what_to_install(tmp_path: Path) -> None:
    """A clamd binary that is not there names the Debian package to install."""
    with pytest.raises(ClamdStartError, match="apt-get install clamav-daemon"):
        find_clamd(tmp_path / "no-clamd")


def test_clamd_is_found_on_this_machine() -> None:
    """The default lookup finds Debian's /usr/sbin/clamd."""
    assert find_clamd().name == "clamd"


async def test_too_long_socket_path_is_refused_before_starting(tmp_path: Path) -> None:
    """A unix socket path over 107 bytes fails with a clear message, no clamd run."""
    deep = tmp_path / ("x" * 120)
    process = ClamdProcess(deep, max_upload_size=1000)
    with pytest.raises(ClamdStartError, match="shorter data folder"):
        await process.start()
    assert process.pid is None


def fake_clamd(tmp_path: Path, body: str) -> Path:
    """An executable standing in for clamd that never opens a socket."""
    script = tmp_path / "fake-clamd"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


async def test_clamd_that_never_answers_fails_start_and_is_stopped(
    tmp_path: Path,
) -> None:
    """No PONG within start_timeout: a ClamdStartError, and the process is gone."""
    process = ClamdProcess(
        tmp_path,
        max_upload_size=1000,
        clamd_binary=fake_clamd(tmp_path, "exec sleep 30"),
        start_timeout=0.5,
    )
    with pytest.raises(ClamdStartError, match=r"did not answer PING within 0.5 s"):
        await process.start()
    assert not process.running and process.pid is None


PONG_IGNORING_SIGTERM = """
import signal, socket, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
conf = dict(l.split(" ", 1) for l in open(sys.argv[1].split("=", 1)[1]) if " " in l)
server = socket.create_server(("127.0.0.1", int(conf["TCPSocket"])))
while True:
    connection, _ = server.accept()
    connection.recv(100)
    connection.sendall(b"PONG\\0")
    connection.close()
"""


async def test_stop_kills_a_clamd_that_ignores_sigterm(tmp_path: Path) -> None:
    """A child that answers PING but ignores SIGTERM is killed after the grace."""
    script = tmp_path / "stubborn.py"
    script.write_text(PONG_IGNORING_SIGTERM)
    process = ClamdProcess(
        tmp_path,
        max_upload_size=1000,
        unix_socket=False,
        clamd_binary=fake_clamd(tmp_path, f'exec {sys.executable} {script} "$@"'),
    )
    await process.start()
    assert process.running
    started = time.monotonic()
    assert await process.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 3
    assert not process.running
