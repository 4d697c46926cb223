"""Sample files for the scanner tests, made by the libraries that real users' tools
resemble (Pillow, reportlab, python-docx, openpyxl, odfpy, xlwt) rather than by hand,
so the detector is checked against real structure and not against our own guesses.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

from PIL import Image

TESTFILES = Path("/usr/share/clamav-testfiles")


def image_bytes(fmt: str) -> bytes:
    """A small real image in Pillow format ``fmt`` (PNG, JPEG, GIF, WEBP)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 160)).save(buffer, fmt)
    return buffer.getvalue()


def heic_header() -> bytes:
    """The start of an iPhone HEIC photo: an ftyp box with brand ``heic``."""
    ftyp = b"ftypheic" + b"\0\0\0\0" + b"mif1heic"
    return len(ftyp + b"\0\0\0\0").to_bytes(4, "big") + ftyp + b"\0" * 64


def pdf_bytes(text: str = "Antrag auf Sondernutzung") -> bytes:
    """A one-page PDF written by reportlab."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def docx_bytes() -> bytes:
    """A Word document written by python-docx."""
    import docx

    document = docx.Document()
    document.add_paragraph("Sehr geehrte Damen und Herren,")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    """An Excel workbook written by openpyxl."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "Zählerstand"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    """A minimal PowerPoint package (no writer library installed), laid out as the
    OPC spec requires: content types, package relationships, main part."""
    ct = "application/vnd.openxmlformats-officedocument.presentationml"
    return _zip(
        {
            "[Content_Types].xml": _content_types(
                '<Override PartName="/ppt/presentation.xml" '
                f'ContentType="{ct}.presentation.main+xml"/>'
            ),
            "_rels/.rels": _RELS.format(target="ppt/presentation.xml"),
            "ppt/presentation.xml": '<?xml version="1.0"?><p:presentation '
            'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
        }
    )


def docm_bytes() -> bytes:
    """A python-docx document turned into a macro-enabled one, as Word saves it."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    files = {name: source.read(name) for name in source.namelist()}
    files["[Content_Types].xml"] = files["[Content_Types].xml"].replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml"
        b".document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml",
    )
    files["word/vbaProject.bin"] = b"\xd0\xcf\x11\xe0 not really VBA"
    return _zip(files)


def odf_bytes(kind: str) -> bytes:
    """An OpenDocument text (``odt``) or spreadsheet (``ods``) written by odfpy."""
    from odf import opendocument, table, text

    if kind == "odt":
        document = opendocument.OpenDocumentText()
        document.text.addElement(text.P(text="Guten Tag"))
    else:
        document = opendocument.OpenDocumentSpreadsheet()
        document.spreadsheet.addElement(table.Table(name="Tabelle1"))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def xls_bytes() -> bytes:
    """A legacy Excel 97 workbook (OLE2) written by xlwt."""
    import xlwt

    workbook = xlwt.Workbook()
    workbook.add_sheet("Tabelle1").write(0, 0, "Zählerstand")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def plain_zip() -> bytes:
    """An ordinary zip archive that is no office file."""
    return _zip({"readme.txt": "hallo", "setup.exe": b"MZ\x90\0"})


def testfile(name: str) -> bytes:
    """A sample from Debian's clamav-testfiles; fails loudly when it is missing."""
    path = TESTFILES / name
    assert path.is_file(), f"{path} missing: apt-get install clamav-testfiles"
    return path.read_bytes()


_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
    'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="{target}"/></Relationships>'
)


def _content_types(overrides: str) -> str:
    return (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType='
        '"application/vnd.openxmlformats-package.relationships+xml"/>'
        f"{overrides}</Types>"
    )


def fake_ooxml(main_part_exists: bool) -> bytes:
    """A zip that declares a Word main part, with or without that part present."""
    ct = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    files: dict[str, str | bytes] = {
        "[Content_Types].xml": _content_types(
            '<Override PartName="/word/document.xml" '
            f'ContentType="{ct}.document.main+xml"/>'
        ),
        "_rels/.rels": _RELS.format(target="word/document.xml"),
    }
    if main_part_exists:
        files["word/document.xml"] = "<w:document/>"
    else:
        files["word/evil.exe"] = b"MZ\x90\0"
    return _zip(files)


def _zip(files: Mapping[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
