"""Alembic environment: migrations run on the connection the bridge hands over
(``config.attributes["connection"]``), so SQLite and PostgreSQL share one path.

The target metadata holds every table: the core's and the bots', loaded through
the ``buergerchat.models`` entry points (the core imports no bot)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.db.metadata import load_models

config = context.config
target_metadata = load_models()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # developer use: alembic -x url=sqlite+aiosqlite:///x.db revision --autogenerate
    asyncio.run(_run_from_url(context.get_x_argument(as_dictionary=True)["url"]))
