"""Reading a citizen's upload: multipart/form-data with ``file`` and an optional
``client_id``, read in chunks up to the upload limit."""

from __future__ import annotations

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.api.citizen import text_problem
from bridge.errors import InvalidField, TooLarge


async def read_upload(
    request: web.Request, limit: int
) -> tuple[str, bytes, str | None]:
    """The file, its name and the optional ``client_id`` of a multipart upload;
    a malformed body is a 400 naming ``file``, never a 500."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidField(
            "file", "Send the file as multipart/form-data in the field 'file'."
        )
    try:
        return await _read_parts(request, limit)
    except (
        ValueError,
        AssertionError,
        LookupError,
        aiohttp.ClientError,
        HttpProcessingError,
    ) as e:
        # aiohttp's parser raises these for a missing or wrong boundary, a
        # broken part header or a truncated body.
        raise InvalidField(
            "file",
            "The multipart/form-data body is malformed "
            f"({type(e).__name__}). Send the file in a form field 'file', "
            "as a browser's FormData does.",
        ) from None


async def _read_parts(
    request: web.Request, limit: int
) -> tuple[str, bytes, str | None]:
    reader = await request.multipart()
    filename, data, client_id = "", None, None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "client_id":
            client_id = (await part.text()).strip()[:100] or None
            if client_id is not None and text_problem(client_id):
                raise InvalidField(
                    "client_id", f"The field 'client_id' {text_problem(client_id)}"
                )
        elif part.name == "file":
            filename = part.filename or "datei"
            buffer = bytearray()
            while chunk := await part.read_chunk(256 * 1024):
                buffer += chunk
                if len(buffer) > limit:
                    raise TooLarge(
                        f"Die Datei ist größer als {limit >> 20} MB. / The file is "
                        f"larger than {limit >> 20} MB; send a smaller one."
                    )
            data = bytes(buffer)
    if data is None:
        raise InvalidField("file", "The form has no field 'file' with the file.")
    return filename, data, client_id
