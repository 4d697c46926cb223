"""The scanner's plain parts: retry backoff, image sizes from headers and the
``scanner:`` settings with their problems named by file, line and key."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest

from bots.scanner.content import DEFAULT_ALLOWED, GROUPS
from bots.scanner.pipeline import (
    MAX_RETRY_S,
    ScannerSettings,
    image_size,
    read_settings,
    retry_delay,
)
from bridge.yamlconf import Problems, Section


def settings_from(tmp_path: Path, text: str) -> tuple[ScannerSettings, list[str], str]:
    """Read ``text`` as buergerchat.yaml; return settings, problems and file name."""
    path = tmp_path / "buergerchat.yaml"
    path.write_text(text, encoding="utf-8")
    problems = Problems()
    root = Section.load(path, problems)
    settings = read_settings(root.section("scanner"), max_upload_size_mb=20)
    return settings, [str(p) for p in problems.items], str(path)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 5), (1, 5), (2, 10), (3, 20), (4, 40), (7, 320), (8, 600), (50, 600)],
)
def test_retry_delay_doubles_from_five_seconds_up_to_ten_minutes(
    attempts: int, seconds: float
) -> None:
    """Backoff starts at 5 s, doubles per failed attempt and stops at 10 minutes."""
    assert retry_delay(attempts) == timedelta(seconds=seconds)
    assert retry_delay(attempts) <= timedelta(seconds=MAX_RETRY_S)


def test_png_size_read_from_ihdr() -> None:
    """A PNG's width and height come from its IHDR chunk."""
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    assert image_size(header + struct.pack(">II", 640, 480)) == (640, 480)


def test_gif_size_read_from_logical_screen() -> None:
    """A GIF's size is little-endian right after the signature."""
    assert image_size(b"GIF89a" + struct.pack("<HH", 32, 16)) == (32, 16)
    assert image_size(b"GIF87a" + struct.pack("<HH", 1, 2)) == (1, 2)


def test_jpeg_size_read_from_frame_header_after_other_segments() -> None:
    """A JPEG's size comes from its SOF segment, skipping APP0 and the DHT
    segment (0xC4), which shares the SOF marker range."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    dht = b"\xff\xc4" + struct.pack(">H", 5) + b"\x00\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 300, 200) + b"\x03\x00\x00"
    assert image_size(b"\xff\xd8" + app0 + dht + sof0) == (200, 300)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\n",
        b"\x89PNG\r\n\x1a\n\x00\x00",  # cut short before IHDR
        b"GIF89a\x01",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # no frame header
    ],
)
def test_unknown_or_truncated_image_has_no_size(data: bytes) -> None:
    """Anything that is not a complete image header gives None, never an error."""
    assert image_size(data) is None


def test_missing_scanner_section_gives_defaults(tmp_path: Path) -> None:
    """Without a scanner: section clamd is embedded with the documented defaults."""
    settings, problems, _ = settings_from(tmp_path, "other: 1\n")
    assert problems == []
    assert settings == ScannerSettings(
        clamd="embedded",
        scan_timeout=60.0,
        give_up_after=timedelta(hours=24),
        allowed=DEFAULT_ALLOWED,
        max_size=20 << 20,
        synapse_module=True,
        admin_token_file=None,
    )


def test_module_switch_and_admin_token_file_are_read(tmp_path: Path) -> None:
    """synapse_module and admin_token_file are taken as written; a unix clamd
    gives a socket client, and the Synapse module is told the same address."""
    settings, problems, _ = settings_from(
        tmp_path,
        "scanner:\n"
        '  clamd: "unix:/run/clamav/clamd.ctl"\n'
        "  synapse_module: false\n"
        '  admin_token_file: "secrets/admin_token"\n',
    )
    assert problems == []
    assert settings.synapse_module is False
    assert settings.admin_token_file == "secrets/admin_token"
    assert settings.external_client().unix_socket == Path("/run/clamav/clamd.ctl")
    assert settings.clamd_address(tmp_path) == "unix:/run/clamav/clamd.ctl"


def test_embedded_clamd_address_is_its_socket_in_the_data_folder(
    tmp_path: Path,
) -> None:
    settings, _, _ = settings_from(tmp_path, "other: 1\n")
    assert settings.clamd_address(tmp_path) == f"unix:{tmp_path}/clamd/clamd.sock"


def test_module_switch_must_be_a_boolean(tmp_path: Path) -> None:
    """A non-boolean switch is named with file, line and key."""
    settings, problems, file = settings_from(
        tmp_path, "scanner:\n  synapse_module: maybe\n"
    )
    assert problems == [
        f"{file}:2: scanner.synapse_module: must be true or false, not 'maybe'"
    ]


def test_valid_scanner_section_is_read(tmp_path: Path) -> None:
    """tcp address, timeouts and allowed kinds are taken as written."""
    settings, problems, _ = settings_from(
        tmp_path,
        "scanner:\n"
        '  clamd: "tcp://127.0.0.1:3310"\n'
        "  scan_timeout_seconds: 5\n"
        "  give_up_after_hours: 0.5\n"
        "  allowed: [png, pdf]\n",
    )
    assert problems == []
    assert settings.clamd == "tcp://127.0.0.1:3310"
    assert settings.scan_timeout == 5.0
    assert settings.give_up_after == timedelta(minutes=30)
    assert settings.allowed == frozenset({"png", "pdf"})
    client = settings.external_client()
    assert (client.host, client.port) == ("127.0.0.1", 3310)


def test_group_names_expand_to_their_kinds(tmp_path: Path) -> None:
    """A group such as ``image`` allows every kind in it."""
    settings, problems, _ = settings_from(tmp_path, "scanner:\n  allowed: [image]\n")
    assert problems == []
    assert settings.allowed == GROUPS["image"]


@pytest.mark.parametrize(
    "address", ["localhost:3310", "tcp://127.0.0.1", "tcp://:3310", "clamd"]
)
def test_bad_clamd_address_named_with_file_line_and_key(
    tmp_path: Path, address: str
) -> None:
    """An unusable clamd address is reported at its line, and the default is kept."""
    settings, problems, file = settings_from(
        tmp_path, f"homeserver: {{}}\nscanner:\n  clamd: {address!r}\n"
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{file}:3: scanner.clamd: must be 'embedded'")
    assert settings.clamd == "embedded"


def test_unknown_kind_named_with_its_own_line(tmp_path: Path) -> None:
    """A misspelt kind is reported at its list entry, with the known kinds."""
    _, problems, file = settings_from(
        tmp_path, "scanner:\n  allowed:\n    - png\n    - exe\n"
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"{file}:4: scanner.allowed[1]: unknown file kind 'exe'; known: "
    )
    assert "pdf" in problems[0]


def test_unknown_key_and_bad_number_reported(tmp_path: Path) -> None:
    """A typo'd key and a non-positive timeout are both named, with a hint."""
    _, problems, file = settings_from(
        tmp_path, "scanner:\n  scan_timeout_seconds: 0\n  give_up_after_hour: 2\n"
    )
    assert problems == [
        f"{file}:2: scanner.scan_timeout_seconds: must be greater than 0",
        f"{file}:3: scanner.give_up_after_hour: unknown key; "
        "did you mean 'give_up_after_hours'?",
    ]
