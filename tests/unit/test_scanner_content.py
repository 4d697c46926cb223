"""The allow-list judges files by their bytes, never by name or declared type."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bots.scanner.content import (
    DEFAULT_ALLOWED,
    MACRO_DOCUMENT,
    check_allowed,
    detect,
    expand_kinds,
)
from bridge.errors import UnsupportedMediaType
from tests import scanner_fixtures as samples

REAL_FILES: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "png": (lambda: samples.image_bytes("PNG"), "png", "image/png"),
    "jpeg": (lambda: samples.image_bytes("JPEG"), "jpeg", "image/jpeg"),
    "gif": (lambda: samples.image_bytes("GIF"), "gif", "image/gif"),
    "webp": (lambda: samples.image_bytes("WEBP"), "webp", "image/webp"),
    "heic": (samples.heic_header, "heic", "image/heic"),
    "pdf": (samples.pdf_bytes, "pdf", "application/pdf"),
    "docx": (
        samples.docx_bytes,
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "xlsx": (
        samples.xlsx_bytes,
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "pptx": (
        samples.pptx_bytes,
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    "odt": (
        lambda: samples.odf_bytes("odt"),
        "odt",
        "application/vnd.oasis.opendocument.text",
    ),
    "ods": (
        lambda: samples.odf_bytes("ods"),
        "ods",
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    "xls": (samples.xls_bytes, "xls", "application/vnd.ms-excel"),
    "doc": (lambda: samples.testfile("clam.ole.doc"), "doc", "application/msword"),
    "ppt": (
        lambda: samples.testfile("clam.ppt"),
        "ppt",
        "application/vnd.ms-powerpoint",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_files_are_recognised_with_their_mime_type(name: str) -> None:
    """Each supported kind, written by a real tool, is detected with its MIME type."""
    make, kind, mime = REAL_FILES[name]
    found = detect(make())
    assert found is not None, f"{name} not recognised"
    assert (found.kind, found.mime) == (kind, mime)


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_supported_kind_is_allowed_by_default(name: str) -> None:
    """The default allow-list lets every kind above through check_allowed."""
    make, kind, _ = REAL_FILES[name]
    assert check_allowed(make()).kind == kind


@pytest.mark.parametrize(
    ("make", "looks_like"),
    [
        (lambda: samples.testfile("clam.exe"), "application/x-msdownload"),
        (lambda: Path("/bin/ls").read_bytes(), "application/x-executable"),
        (samples.plain_zip, "application/zip"),
    ],
    ids=["windows-exe", "elf", "zip"],
)
def test_executables_and_archives_are_rejected_whatever_their_name(
    make: Callable[[], bytes], looks_like: str
) -> None:
    """Executables and plain archives fail with 415 naming what they look like."""
    with pytest.raises(UnsupportedMediaType) as caught:
        check_allowed(make())
    assert caught.value.status == 415
    assert looks_like in caught.value.message
    assert "png" in caught.value.message  # tells the citizen what is accepted


def test_png_magic_after_an_executable_header_is_not_an_image() -> None:
    """A PE file with PNG bytes later on is not taken for a PNG."""
    data = samples.testfile("clam.exe") + samples.image_bytes("PNG")
    assert detect(data) is None


def test_office_macros_are_rejected_unless_explicitly_allowed() -> None:
    """A macro-enabled Word file is its own kind, outside every default group."""
    data = samples.docm_bytes()
    found = detect(data)
    assert found is not None and found.kind == MACRO_DOCUMENT
    assert found.extension == "docm"
    with pytest.raises(UnsupportedMediaType, match="macros"):
        check_allowed(data)
    assert check_allowed(data, expand_kinds(["office", MACRO_DOCUMENT])) == found


def test_zip_declaring_a_missing_word_part_is_not_a_document() -> None:
    """A zip whose content types name a main part it lacks is rejected as fake."""
    assert detect(samples.fake_ooxml(main_part_exists=False)) is None
    assert detect(samples.fake_ooxml(main_part_exists=True)) is not None


def test_truncated_office_file_is_not_recognised() -> None:
    """A docx cut off in the middle (no zip directory) is not accepted."""
    data = samples.docx_bytes()
    assert detect(data[: len(data) // 2]) is None


def test_allowed_kinds_are_configurable() -> None:
    """With only images allowed, a PDF is refused and a PNG passes."""
    images = expand_kinds(["image"])
    assert check_allowed(samples.image_bytes("PNG"), images).kind == "png"
    with pytest.raises(UnsupportedMediaType, match="PDF"):
        check_allowed(samples.pdf_bytes(), images)


def test_unknown_kind_in_config_is_an_error_naming_it() -> None:
    """A typo in the allowed kinds fails loudly instead of allowing nothing."""
    with pytest.raises(ValueError, match="'exe'.*known: .*docx"):
        expand_kinds(["pdf", "exe"])


def test_plain_text_is_detected_but_not_allowed_by_default() -> None:
    """UTF-8 text with umlauts is text/plain, and needs the text group to pass."""
    data = "Grüße aus Hockenheim\r\nZeile 2\n".encode()
    found = detect(data)
    assert found is not None and found.mime == "text/plain"
    assert "text" not in DEFAULT_ALLOWED
    with pytest.raises(UnsupportedMediaType):
        check_allowed(data)
    assert check_allowed(data, expand_kinds(["text"])).kind == "text"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"#!/bin/sh\nrm -rf ~\n",
        b"Text\x00mit NUL",
        b"\x1b[31mANSI escape",
        b"caf\xe9 latin-1",
    ],
    ids=["html", "svg", "script", "nul", "escape", "latin1"],
)
def test_markup_scripts_and_binary_are_not_plain_text(data: bytes) -> None:
    """Content a browser or shell would run, or that is not UTF-8, is not text."""
    assert detect(data) is None


def test_empty_file_is_rejected_as_empty() -> None:
    """An empty upload gets a message saying it is empty."""
    with pytest.raises(UnsupportedMediaType, match="empty"):
        check_allowed(b"")


@pytest.mark.parametrize("name", ["docx", "xlsx", "odt", "xls", "doc", "ppt"])
def test_damaged_office_files_are_rejected_not_crashed_on(name: str) -> None:
    """Flipped bytes in a package give a kind or None, never an exception (500)."""
    import random

    original = REAL_FILES[name][0]()
    rng = random.Random(name)  # fixed seed per kind: the same damage every run
    for _ in range(300):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        found = detect(bytes(damaged))
        assert found is None or found.kind in {name, MACRO_DOCUMENT}
