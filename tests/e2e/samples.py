"""Small things several e2e files need: sample images made on the fly and a look
into the bridge's SQLite database of a running stack."""

from __future__ import annotations

import os
import sqlite3
import struct
import zlib
from typing import Any

from .stack import Stack


def png(
    width: int = 3,
    height: int = 2,
    rgb: bytes = b"\xff\x00\x00",
    *,
    noisy: bool = False,
) -> bytes:
    """A valid PNG of one colour; ``noisy`` fills it with random pixels stored
    uncompressed, so it has real size (width * height * 3 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def row() -> bytes:
        return b"\x00" + (os.urandom(width * 3) if noisy else rgb * width)

    rows = b"".join(row() for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 0 if noisy else 6))
        + chunk(b"IEND", b"")
    )


def query(stack: Stack, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the stack's bridge database (SQLite default)."""
    connection = sqlite3.connect(stack.data_dir / "bridge.db", timeout=30)
    try:
        with connection:
            return connection.execute(sql, params).fetchall()
    finally:
        connection.close()
