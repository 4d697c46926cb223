"""Fixtures of the mail tests: the outbox table on SQLite and PostgreSQL, a real
SMTP server on loopback, and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import bridge.mail.models  # noqa: F401  (registers the outbox table on Base)
from bridge.clock import FakeClock
from bridge.db.models import Base
from tests.conftest import empty_database
from tests.unit.mail.smtp_server import SmtpServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 14, 17, 30, tzinfo=UTC))


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine with just the tables the outbox needs (cases for the FK, jobs
    for its sends)."""
    async with empty_database(request.param, tmp_path, "bc_mail") as engine:
        async with engine.begin() as conn:
            await conn.run_sync(
                Base.metadata.create_all,
                tables=[
                    Base.metadata.tables["cases"],
                    Base.metadata.tables["mail_outbox"],
                    Base.metadata.tables["jobs"],
                ],
            )
        yield engine


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    """A recording SMTP server on 127.0.0.1 (no TLS, no login)."""
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
