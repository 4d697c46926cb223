"""Shared fixtures: the bridge store on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.db.engine import create_engine, migrate
from bridge.db.store import Store

PG_DSN = os.environ.get("BUERGERCHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_DSN + "/postgres", timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def create_pg_database(prefix: str = "bc_test") -> str:
    """A fresh, empty PostgreSQL database; returns its name."""
    import asyncpg

    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(
            f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def require(service: str, reachable: bool) -> None:
    """A test that needs a service of the machine: skipped where it is missing,
    failed in CI (where the machine must have it)."""
    if reachable:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{service} is not reachable")
    pytest.skip(f"{service} is not reachable")


async def require_pg() -> None:
    require(f"PostgreSQL at {PG_DSN}", await _pg_available())


@contextlib.asynccontextmanager
async def empty_database(
    kind: str, tmp_path: Path, prefix: str = "bc_test"
) -> AsyncIterator[AsyncEngine]:
    """An engine on a new, empty database: a file under ``tmp_path`` for
    ``sqlite``, a database of its own for ``postgres`` (dropped afterwards;
    skipped when PostgreSQL is not reachable, a failure in CI)."""
    name = None
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / (prefix + '.db')}")
    else:
        await require_pg()
        name = await create_pg_database(prefix)
        engine = create_engine(
            PG_DSN.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        )
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The bridge store, migrated, on SQLite and on PostgreSQL."""
    async with empty_database(request.param, tmp_path, "bc_bridge") as engine:
        await migrate(engine)
        s = Store(engine)
        try:
            yield s
        finally:
            await s.close()
