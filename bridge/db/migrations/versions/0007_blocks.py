"""who opened a case, pseudonymously (cases.client_key), and blocks

Revision ID: 0007
Revises: 0006

A burst of chats from one address is summarised for staff, and admins can block
an address or a case (``!block``); both need to know which cases came from the
same address without keeping the address: an HMAC under a secret of the
installation. Cases from before this release have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("client_key", sa.String(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_cases_client_key"), ["client_key"])
    op.create_table(
        "blocks",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("lifted_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocks_client_key"), ["client_key"])
        batch_op.create_index(batch_op.f("ix_blocks_case_id"), ["case_id"])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocks_case_id"))
        batch_op.drop_index(batch_op.f("ix_blocks_client_key"))
    op.drop_table("blocks")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_client_key"))
        batch_op.drop_column("client_key")
