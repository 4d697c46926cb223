"""A database written by a released Bürgerchat still migrates and serves its cases.

Each ``tests/fixtures/db/release-<rev>.json`` holds the rows a release wrote
(``make_release_fixture.py``) and the Alembic revision it was at. An empty
database is migrated only up to that revision, the rows go in through the tables
as they were then (reflected from the database, not today's models, which may
have gained columns), and then the ordinary ``migrate()`` brings it to the newest
revision, on SQLite and PostgreSQL. The cases must be served as before.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, LargeBinary, MetaData, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.offline.store import OfflineStore
from bots.scanner.pipeline import AttachmentQueue
from bridge.clock import as_utc
from bridge.db.engine import MIGRATIONS, migrate
from bridge.db.store import Store
from bridge.mail.store import OutboxStore
from tests.conftest import empty_database

FIXTURES = sorted(
    (Path(__file__).parents[2] / "fixtures" / "db").glob("release-*.json")
)
Rows = list[dict[str, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty, unmigrated database (SQLite and PostgreSQL)."""
    async with empty_database(request.param, tmp_path, "bc_release") as engine:
        yield engine


def _config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _alembic(connection: Connection) -> AlembicConfig:
    """The configuration ``migrate()`` uses, on this connection."""
    cfg = _config()
    cfg.attributes["connection"] = connection
    return cfg


def _value(column: Any, value: Any) -> Any:
    """A JSON value back into what the column held (see make_release_fixture)."""
    if value is None:
        return None
    if isinstance(column.type, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, LargeBinary):
        return base64.b64decode(value)
    return value


def _load(connection: Connection, revision: str, tables: dict[str, Rows]) -> None:
    """Migrate up to ``revision`` only, then insert the rows into the tables as
    they are at that revision."""
    command.upgrade(_alembic(connection), revision)
    metadata = MetaData()
    metadata.reflect(connection)
    assert set(tables) == set(metadata.tables) - {"alembic_version"}
    quote = connection.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:  # parents before children
        rows = tables.get(table.name) or []
        for row in rows:
            assert set(row) <= set(table.c.keys()), (table.name, row)
        if rows:
            connection.execute(
                insert(table),
                [{k: _value(table.c[k], v) for k, v in row.items()} for row in rows],
            )
        if connection.dialect.name != "postgresql":
            continue
        # Explicit ids leave PostgreSQL's sequences behind (a restore sets them).
        for column in table.primary_key.columns:
            sequence = connection.scalar(
                text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            )
            if sequence:
                connection.execute(
                    text(
                        f"SELECT setval(:s, COALESCE((SELECT MAX({quote(column.name)})"
                        f" FROM {quote(table.name)}), 0) + 1, false)"
                    ),
                    {"s": sequence},
                )


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _counts(connection: Connection, names: list[str]) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(connection, only=names)
    return {
        name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
        for name, table in metadata.tables.items()
    }


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


@pytest.fixture(params=FIXTURES, ids=[f.stem for f in FIXTURES])
def release(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One release's rows: {"revision": …, "tables": {table: [row, …]}}."""
    return dict(json.loads(request.param.read_text(encoding="utf-8")))


def test_there_is_a_release_fixture() -> None:
    """The upgrade test below runs once per fixture; it must not run zero times."""
    assert [f.name for f in FIXTURES][:1] == ["release-0004.json"]


async def test_release_database_upgrades_and_serves_its_cases(
    empty_engine: AsyncEngine, release: dict[str, Any]
) -> None:
    """Rows a release wrote, migrated to the newest schema: both cases, their
    tokens and their timelines in order are served as before, the closed case
    stays closed, nothing is lost, and new cases and messages can be added."""
    data = release
    tables: dict[str, Rows] = data["tables"]
    async with empty_engine.begin() as conn:
        await conn.run_sync(_load, data["revision"], tables)
        assert await conn.run_sync(_revision) == data["revision"]

    await migrate(empty_engine)

    head = ScriptDirectory.from_config(_config()).get_current_head()
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_revision) == head
        counts = await conn.run_sync(_counts, list(tables))
    assert counts == {name: len(rows) for name, rows in tables.items()}

    store = Store(empty_engine)
    cases = tables["cases"]
    closed = [c for c in cases if c["closed_at"]]
    live = [c for c in cases if not c["closed_at"] and c["state"] == "live"]
    assert len(closed) == 1 and len(live) == 1  # what the fixture is about

    for row in cases:
        case = await store.get_case(row["case_id"])
        assert case is not None, row["case_id"]
        assert (case.number, case.reference, case.state, case.department) == (
            row["number"],
            row["reference"],
            row["state"],
            row["department"],
        )
        assert (case.room_id, case.ghost_mxid, case.citizen_name) == (
            row["room_id"],
            row["ghost_mxid"],
            row["citizen_name"],
        )
        # Sub-states the release kept in ``extra`` are columns now.
        assert case.invited == row["extra"].get("invited", [])
        assert _utc(case.closed_at) == _when(row["closed_at"])
        assert await store.case_by_room(row["room_id"]) is not None

        events = await store.events_after(row["case_id"], 0)
        expected = sorted(
            (e for e in tables["case_events"] if e["case_id"] == row["case_id"]),
            key=lambda e: e["seq"],
        )
        assert expected, "every fixture case has a timeline"
        assert [
            (e.seq, e.type, e.sender, e.sender_name, e.body, e.client_id)
            + (e.matrix_event_id, e.delivery, e.extra, as_utc(e.ts))
            for e in events
        ] == [
            (e["seq"], e["type"], e["sender"], e["sender_name"], e["body"])
            + (e["client_id"], e["matrix_event_id"], e["delivery"], e["extra"])
            + (_when(e["ts"]),)
            for e in expected
        ]
    assert {e["sender"] for e in tables["case_events"]} >= {
        "citizen",
        "staff",
        "system",
    }

    for row in tables["case_tokens"]:
        token = await store.get_token(row["token_hash"])
        assert token is not None, row["token_hash"]
        assert (token.case_id, token.purpose) == (row["case_id"], row["purpose"])
        assert as_utc(token.expires_at) == _when(row["expires_at"])
        assert _utc(token.revoked_at) == _when(row["revoked_at"])

    waiting = [t["txn_id"] for t in tables["as_inbox"] if t["processed_at"] is None]
    assert [t.txn_id for t in await store.unprocessed_transactions()] == waiting
    seen = {e["event_id"] for e in tables["as_seen_events"]}
    assert await store.seen_events(sorted(seen | {"$unknown:x"})) == seen

    for row in tables["mail_outbox"]:
        mail = await OutboxStore(store.engine).by_dedup_key(row["dedup_key"])
        assert mail is not None and mail.raw == base64.b64decode(row["raw"])
    for row in tables["offline_messages"]:
        record = await OfflineStore(store.engine).by_client_id(row["client_id"])
        assert record is not None and record.case_id == row["case_id"]
    for row in tables["attachments"]:
        found = await AttachmentQueue(store.engine).get(
            row["case_id"], row["attachment_id"]
        )
        assert found is not None and found.state == row["state"]

    # The upgraded database takes new work: numbering goes on after the old rows.
    new = await store.create_case(
        case_id="c_after_upgrade",
        reference_prefix="BC",
        department=live[0]["department"],
        topic=None,
        language="de",
        citizen_name=None,
        ghost_mxid="@bc_after_upgrade:x",
        state="live",
    )
    assert new.number == max(c["number"] for c in cases) + 1
    event, created = await store.add_event(
        live[0]["case_id"], type="message", sender="citizen", body="Noch da?"
    )
    assert created and event.seq == max(e["seq"] for e in tables["case_events"]) + 1
