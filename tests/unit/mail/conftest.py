"""Fixtures of the mail tests: the outbox table on SQLite and PostgreSQL, a real
SMTP server on loopback, and a clock the tests move by hand."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import bots.mail.models  # noqa: F401  (registers the outbox table on Base)
from bridge.db.engine import create_engine
from bridge.db.models import Base
from tests.conftest import PG_DSN, _pg_available, create_pg_database, drop_pg_database
from tests.unit.mail.smtp_server import SmtpServer


class FakeClock:
    """Stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 14, 17, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine with just the tables the outbox needs (cases for the FK)."""
    name = None
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
    else:
        if not await _pg_available():
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}")
            pytest.skip(f"PostgreSQL is not reachable at {PG_DSN}")
        name = await create_pg_database("bc_mail")
        engine = create_engine(
            PG_DSN.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        )
    async with engine.begin() as conn:
        await conn.run_sync(
            Base.metadata.create_all,
            tables=[Base.metadata.tables["cases"], Base.metadata.tables["mail_outbox"]],
        )
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await drop_pg_database(name)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    """A recording SMTP server on 127.0.0.1 (no TLS, no login)."""
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
