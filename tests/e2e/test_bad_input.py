"""Bad input from a client is a 4xx JSON error that says what to do, never a 500,
and leaves no traceback in the log: malformed multipart, deeply nested JSON,
lone surrogates and NUL characters."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .stack import Stack
from .test_live_chat import open_case

pytestmark = pytest.mark.e2e


async def raw(
    stack: Stack,
    path: str,
    body: bytes,
    content_type: str,
    token: str | None = None,
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            stack.bridge_url + path, data=body, headers=headers
        ) as response:
            return response.status, await response.json()


async def test_malformed_multipart_is_a_400(stack: Stack) -> None:
    """Broken part headers, a missing or wrong boundary and a NUL in the file
    name are refused with 400 naming the field 'file'."""
    case = await open_case(stack)
    path = f"/api/v1/cases/{case['case_id']}/attachments"
    bodies = [
        (
            b"--xx\r\nbroken header line\r\n\r\ndata\r\n--xx--\r\n",
            "multipart/form-data; boundary=xx",
        ),
        (
            b"--xx\r\nContent-Disposition: form-data; name=file\r\n\r\nx",
            "multipart/form-data",
        ),
        (
            b"--xx\r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n--xx--",
            "multipart/form-data; boundary=yy",
        ),
        (
            b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a\x00.png"'
            b"\r\nContent-Type: image/png\r\n\r\nabc\r\n--xx--\r\n",
            "multipart/form-data; boundary=xx",
        ),
    ]
    for body, content_type in bodies:
        status, answer = await raw(stack, path, body, content_type, case["token"])
        assert 400 <= status < 500, (body, status, answer)
        assert answer["errcode"].startswith("BC_"), answer
    assert "Traceback" not in stack.log()


async def test_deep_json_surrogates_and_nul_are_400(stack: Stack) -> None:
    """Deeply nested JSON (no token needed), a lone surrogate in name or body and
    a NUL are 400 with the usual JSON error; nothing reaches the database."""
    deep = b"[" * 10_000 + b"]" * 10_000
    status, answer = await raw(stack, "/api/v1/cases", deep, "application/json")
    assert (status, answer["errcode"]) == (400, "BC_NOT_JSON"), answer
    surrogate = b'{"department": "buergerbuero", "consent": true, "name": "\\ud800"}'
    status, answer = await raw(stack, "/api/v1/cases", surrogate, "application/json")
    assert (status, answer["field"]) == (400, "name"), answer
    case = await open_case(stack)
    path = f"/api/v1/cases/{case['case_id']}/messages"
    for body in (
        b'{"body": "x\\udfff", "client_id": "s1"}',
        b'{"body": "a\\u0000b", "client_id": "s2"}',
    ):
        status, answer = await raw(stack, path, body, "application/json", case["token"])
        assert (status, answer["field"]) == (400, "body"), answer
    status, answer = await raw(
        stack,
        "/api/v1/offline-messages",
        b'{"client_id": "x", "description": "\\ud800", "name": "A", "consent": true}',
        "application/json",
    )
    assert status == 400, answer
    assert "Traceback" not in stack.log()
