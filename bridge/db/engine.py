"""Opening the database and bringing its schema up to date with Alembic."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import BuergerchatError

log = logging.getLogger("buergerchat.db")
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaTooNew(BuergerchatError):
    errcode = "BC_SCHEMA_TOO_NEW"


def database_url(setting: str, data_dir: Path, name: str = "bridge.db") -> str:
    """Turn the config's ``sqlite`` / ``postgresql://…`` into an async driver URL."""
    if setting == "sqlite":
        return f"sqlite+aiosqlite:///{data_dir / name}"
    for prefix in ("postgresql://", "postgres://"):
        if setting.startswith(prefix):
            return "postgresql+asyncpg://" + setting[len(prefix) :]
    return setting


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not left in free pages: an erased
            # case is gone from the file, not only from the tables.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in {
        r.revision for r in script.walk_revisions()
    }:
        raise SchemaTooNew(
            f"The database schema ({current}) is newer than this Bürgerchat knows "
            f"(up to {script.get_current_head()}). Install the newer Bürgerchat "
            "version again, or restore the matching database backup."
        )
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply all pending migrations; refuse a schema from a newer version.

    On SQLite, foreign keys are off while migrating: a batch migration copies a
    table and drops the old one, and with foreign keys on that drop would
    cascade into every table that refers to it (a case's tokens, timeline,
    jobs …). They are checked once the migration is done."""
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        try:
            await connection.run_sync(_upgrade)
            await connection.commit()
            if sqlite:
                broken = await connection.exec_driver_sql("PRAGMA foreign_key_check")
                if broken.first() is not None:
                    raise RuntimeError(
                        "after migrating, rows refer to rows that do not exist; "
                        "restore the backup and report this as a bug"
                    )
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()
    log.debug("database schema is up to date")


async def compact_sqlite(engine: AsyncEngine) -> None:
    """SQLite: truncate the write-ahead log (it may still hold deleted rows'
    pages); PostgreSQL needs nothing."""
    if engine.dialect.name != "sqlite":
        return
    for attempt in range(5):
        async with engine.connect() as conn:
            busy = (await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).first()
        if busy is None or not busy[0]:
            return
        await asyncio.sleep(0.1 * (attempt + 1))
    log.info("bridge database: write-ahead log busy, truncated next time")
