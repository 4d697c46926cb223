"""privacy_audit: erasures, expiries and exports, without personal data

Revision ID: 0008
Revises: 0007

Data protection (retention, Art. 15 and 17 DSGVO) deletes cases for good; what
is left is a record that it happened: reference, department, who asked, when,
and counts of what was deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "privacy_audit",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_audit_at"), ["at"])
        batch_op.create_index(batch_op.f("ix_privacy_audit_reference"), ["reference"])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("privacy_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_audit_reference"))
        batch_op.drop_index(batch_op.f("ix_privacy_audit_at"))
    op.drop_table("privacy_audit")
