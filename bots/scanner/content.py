"""Which files citizens may send, judged by their content, and safe names for them.

The file name and the declared type come from the sender and prove nothing, so
:func:`detect` looks only at the bytes: magic numbers for images and PDF (via the
``filetype`` library), the package structure for office files (the zip's
``[Content_Types].xml`` or ODF ``mimetype`` entry, the OLE2 stream names via
``olefile``). Office files with macros get their own kind, ``macro-document``, which
no group contains, because macros are the classic way to ship malware in a letter.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree import ElementTree

import filetype
import olefile

from bridge.errors import UnsupportedMediaType


@dataclass(frozen=True, slots=True)
class Detected:
    """What the content is: a kind name, its MIME type and usual extensions."""

    kind: str
    mime: str
    extensions: tuple[str, ...]

    @property
    def extension(self) -> str:
        """The canonical extension, without dot."""
        return self.extensions[0]


def _kind(kind: str, mime: str, *extensions: str) -> Detected:
    return Detected(kind, mime, extensions)


_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"
KINDS: dict[str, Detected] = {
    d.kind: d
    for d in (
        _kind("png", "image/png", "png"),
        _kind("jpeg", "image/jpeg", "jpg", "jpeg", "jpe"),
        _kind("gif", "image/gif", "gif"),
        _kind("webp", "image/webp", "webp"),
        _kind("heic", "image/heic", "heic", "heif"),
        _kind("pdf", "application/pdf", "pdf"),
        _kind("docx", f"{_OOXML}.wordprocessingml.document", "docx"),
        _kind("xlsx", f"{_OOXML}.spreadsheetml.sheet", "xlsx"),
        _kind("pptx", f"{_OOXML}.presentationml.presentation", "pptx"),
        _kind("odt", f"{_ODF}.text", "odt"),
        _kind("ods", f"{_ODF}.spreadsheet", "ods"),
        _kind("odp", f"{_ODF}.presentation", "odp"),
        _kind("doc", "application/msword", "doc"),
        _kind("xls", "application/vnd.ms-excel", "xls"),
        _kind("ppt", "application/vnd.ms-powerpoint", "ppt"),
        _kind("text", "text/plain", "txt", "text", "csv"),
    )
}
GROUPS: dict[str, frozenset[str]] = {
    "image": frozenset({"png", "jpeg", "gif", "webp", "heic"}),
    "pdf": frozenset({"pdf"}),
    "office": frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp"}),
    "legacy-office": frozenset({"doc", "xls", "ppt"}),
    "text": frozenset({"text"}),
}
DEFAULT_ALLOWED: frozenset[str] = (
    GROUPS["image"] | GROUPS["pdf"] | GROUPS["office"] | GROUPS["legacy-office"]
)
MACRO_DOCUMENT = "macro-document"

_IMAGE_MIMES = {
    "image/png": "png",
    "image/apng": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
}
_OOXML_MAIN = {
    f"{_OOXML}.wordprocessingml.document.main+xml": "docx",
    f"{_OOXML}.spreadsheetml.sheet.main+xml": "xlsx",
    f"{_OOXML}.presentationml.presentation.main+xml": "pptx",
}
_OOXML_MACRO_MAIN = {
    "application/vnd.ms-word.document.macroEnabled.main+xml": "docm",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": "xlsm",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": "pptm",
}
_ODF_MIMES = {KINDS[k].mime: k for k in ("odt", "ods", "odp")}
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
# A real [Content_Types].xml is a few kB; more is a zip bomb or not an office file.
_MAX_CONTENT_TYPES = 1024 * 1024
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE2_STREAMS = (("worddocument", "doc"), ("workbook", "xls"), ("book", "xls"))
_OLE2_MACROS = {"macros", "_vba_project_cur", "vba"}
# Text that a browser or shell would run rather than show.
_ACTIVE_TEXT = re.compile(rb"\s*(<|#!)", re.ASCII)
# C0 controls except tab, newline, form feed and carriage return, DEL, and the C1
# controls as UTF-8 encodes them: binary data or terminal escapes, not text. Bytes,
# not characters, so that a 20 MB upload is checked at C speed.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


def expand_kinds(names: Iterable[str]) -> frozenset[str]:
    """Turn config names (kinds like ``png`` or groups like ``image``) into kinds."""
    kinds: set[str] = set()
    for name in names:
        if name in GROUPS:
            kinds |= GROUPS[name]
        elif name in KINDS or name == MACRO_DOCUMENT:
            kinds.add(name)
        else:
            known = ", ".join(sorted({*GROUPS, *KINDS}))
            raise ValueError(f"unknown file kind {name!r}; known: {known}")
    return frozenset(kinds)


def detect(data: bytes) -> Detected | None:
    """What ``data`` is, from its bytes alone; None if it is none of our kinds."""
    if not data:
        return None
    parse = (
        _detect_zip
        if data.startswith(b"PK\x03\x04")
        else _detect_ole2
        if data.startswith(_OLE2_MAGIC)
        else None
    )
    if parse is not None:
        try:
            return parse(data)
        except Exception:
            # Damaged or hostile packages raise all sorts of errors deep inside
            # zipfile, zlib and olefile; none of them makes an acceptable file.
            return None
    guess = filetype.guess(data)
    if guess is not None:
        if guess.mime in _IMAGE_MIMES:
            return KINDS[_IMAGE_MIMES[guess.mime]]
        if guess.mime == "application/pdf":
            return KINDS["pdf"]
        return None
    return KINDS["text"] if _is_plain_text(data) else None


def check_allowed(data: bytes, allowed: frozenset[str] = DEFAULT_ALLOWED) -> Detected:
    """The detected kind of ``data`` if it is allowed; else UnsupportedMediaType.

    Parsing a large upload takes a fraction of a second: call it through
    ``asyncio.to_thread`` from async code.
    """
    found = detect(data)
    if found is not None and found.kind in allowed:
        return found
    names = ", ".join(sorted(KINDS[k].extension for k in allowed if k in KINDS))
    if not data:
        what = "is empty"
    elif found is None:
        guess = filetype.guess(data)
        what = f"looks like {guess.mime}" if guess else "is of no type we recognise"
    elif found.kind == MACRO_DOCUMENT:
        what = "is an office file with macros"
    else:
        what = f"is {found.kind.upper()} ({found.mime})"
    raise UnsupportedMediaType(
        f"This file {what}. Please send one of: {names}.",
        detected=found.mime if found else None,
    )


def _detect_zip(data: bytes) -> Detected | None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        names = {info.filename for info in infos}
        if infos and infos[0].filename == "mimetype":
            return _detect_odf(archive, names)
        if "[Content_Types].xml" in names:
            return _detect_ooxml(archive, names)
    return None


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes | None:
    with archive.open(name) as member:
        raw = member.read(_MAX_CONTENT_TYPES + 1)
    return raw if len(raw) <= _MAX_CONTENT_TYPES else None


def _detect_odf(archive: zipfile.ZipFile, names: set[str]) -> Detected | None:
    raw = _read_small(archive, "mimetype")
    kind = _ODF_MIMES.get(raw.decode("ascii", "replace").strip()) if raw else None
    if kind is None or "content.xml" not in names:
        return None
    if any(n.startswith(("Basic/", "Scripts/")) for n in names):
        return _macro_document(KINDS[kind].mime, kind)
    return KINDS[kind]


def _detect_ooxml(archive: zipfile.ZipFile, names: set[str]) -> Detected | None:
    raw = _read_small(archive, "[Content_Types].xml")
    if raw is None:
        return None
    mains: set[str] = set()
    macros = any(n.lower().endswith("vbaproject.bin") for n in names)
    for override in ElementTree.fromstring(raw).iter(f"{_CT_NS}Override"):
        content_type = override.get("ContentType", "")
        part = override.get("PartName", "").lstrip("/")
        if content_type in _OOXML_MAIN or content_type in _OOXML_MACRO_MAIN:
            # The declared main part must exist, or the package is a fake shell.
            if part not in names:
                return None
            mains.add(content_type)
        macros = macros or content_type == "application/vnd.ms-office.vbaProject"
    if len(mains) != 1:
        return None
    main = mains.pop()
    if main in _OOXML_MACRO_MAIN:
        extension = _OOXML_MACRO_MAIN[main]
        return _macro_document(main.removesuffix(".main+xml") + ".12", extension)
    kind = _OOXML_MAIN[main]
    return _macro_document(KINDS[kind].mime, kind) if macros else KINDS[kind]


def _detect_ole2(data: bytes) -> Detected | None:
    with olefile.OleFileIO(data) as ole:
        entries = {
            "/".join(path).lower() for path in ole.listdir(streams=True, storages=True)
        }
    top = {entry.split("/")[0] for entry in entries}
    if "powerpoint document" in top:
        kind = "ppt"
    else:
        kind = next((k for stream, k in _OLE2_STREAMS if stream in top), "")
    if not kind:
        return None
    if top & _OLE2_MACROS or any(e.endswith("/vba") for e in entries):
        return _macro_document(KINDS[kind].mime, kind)
    return KINDS[kind]


def _macro_document(mime: str, extension: str) -> Detected:
    return Detected(MACRO_DOCUMENT, mime, (extension,))


def _is_plain_text(data: bytes) -> bool:
    if _ACTIVE_TEXT.match(data.removeprefix(b"\xef\xbb\xbf")):
        return False
    if _CONTROL_BYTES.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Names Windows reserves for devices, with or without an extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{prefix}{n}" for prefix in ("COM", "LPT") for n in "0123456789¹²³"
}
# Control, format (RTL override, zero-width), surrogate, private, unassigned, and
# line/paragraph separators: invisible or misleading in a file name.
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_FORBIDDEN = set('<>:"|?*')
_PLAIN_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
FALLBACK_STEM = "Anhang"


def clean_filename(
    name: str, detected: Detected | None = None, *, max_bytes: int = 150
) -> str:
    """A file name safe to show and save: no path, no tricks, fitting extension.

    Keeps umlauts and other letters; drops paths, control and bidi characters;
    avoids Windows device names; limits the UTF-8 length to ``max_bytes``; and,
    given ``detected``, makes the extension match the real content.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    chars = []
    for ch in name:
        category = unicodedata.category(ch)
        if category in _DROP_CATEGORIES:
            continue
        chars.append("_" if ch in _FORBIDDEN else " " if category == "Zs" else ch)
    # Leading dots hide files, trailing dots and spaces vanish on Windows.
    name = re.sub(r" {2,}", " ", "".join(chars)).strip(" .")

    stem, dot, extension = name.rpartition(".")
    if not dot or not _PLAIN_EXTENSION.fullmatch(extension):
        stem, extension = name, ""
    if detected is not None and extension.lower() not in detected.extensions:
        # "rechnung.pdf.exe" that is really a PDF becomes "rechnung.pdf".
        for alias in detected.extensions:
            if stem.lower().endswith("." + alias):
                stem = stem[: -len(alias) - 1]
                break
        extension = detected.extension
    stem = stem.strip(" .")
    if stem.split(".")[0].strip().upper() in _RESERVED:
        stem = "_" + stem
    suffix = f".{extension}" if extension else ""
    room = max(max_bytes - len(suffix.encode()), 1)
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(" .")
    return (stem or FALLBACK_STEM) + suffix
