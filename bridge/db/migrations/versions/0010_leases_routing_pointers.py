"""leases and routing pointers shared by several bridge processes

Revision ID: 0010
Revises: 0009

Several bridge processes may serve one town behind a load balancer (issue
"Scale"). The appservice inbox must be worked off by one of them at a time,
in order: a lease row names the holder until it runs out. Round robin kept
its last pick in memory, so two processes would each start their own
rotation; the pointer now lives in a table read under the routing lock.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "routing_pointers",
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("mxid", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("department"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("routing_pointers")
    op.drop_table("leases")
