"""case numbers are never given twice, on SQLite too

Revision ID: 0009
Revises: 0008

A case's reference (BC-2026-000123) is its row number. SQLite gives a new row
the highest number plus one, so erasing the newest case (data protection)
would hand its reference to the next one: the audit and the citizen's papers
would name two cases. AUTOINCREMENT makes SQLite remember the highest number
ever used. PostgreSQL's identity never goes back; nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_context().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "cases", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_context().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "cases", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
