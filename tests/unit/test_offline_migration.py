"""Migration 0003 creates the mail outbox and the offline-message tables exactly as
the models declare them, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import bots.mail.models  # noqa: F401  (registers the tables on Base)
import bots.offline.models  # noqa: F401
from bridge.db.models import Base
from bridge.db.store import Store

OURS = {"mail_outbox", "offline_messages"}


def _differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    diffs = compare_metadata(context, Base.metadata)

    def table_of(diff: Any) -> str | None:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            if table is not None and getattr(table, "name", None):
                return str(table.name)
            if isinstance(part, str) and part in OURS:
                return part
            if name in OURS:
                return str(name)
        return None

    return [d for d in diffs if table_of(d) in OURS]


async def test_migrated_tables_match_the_models(store: Store) -> None:
    """After migrating, alembic finds no difference between the database and the
    models for the outbox and offline-message tables (columns, types, indexes,
    unique and foreign keys)."""
    async with store.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert OURS <= tables
        diffs = await conn.run_sync(_differences)
    assert diffs == []


async def test_outbox_foreign_key_erases_with_the_case(store: Store) -> None:
    """Both tables point at cases.case_id with ON DELETE CASCADE, so erasing a
    case erases its mails and its contact data."""
    async with store.engine.connect() as conn:
        for table in OURS:
            keys = await conn.run_sync(
                lambda c, t=table: inspect(c).get_foreign_keys(t)
            )
            found = [
                (k["referred_table"], k["referred_columns"], k["options"]["ondelete"])
                for k in keys
            ]
            assert found == [("cases", ["case_id"], "CASCADE")]
