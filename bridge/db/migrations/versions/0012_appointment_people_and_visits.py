"""appointments: the citizen's contact, language and visit; staff calendar feeds

Revision ID: 0012
Revises: 0011

A booking needs whom to write to (confirmation, reminders, no-show) in which
language, and its record: when the citizen arrived in the waiting room, was
called into the call, when the call ended, whether they did not come. A walk-in
is an appointment made on the spot. Staff subscribe to their appointments as a
calendar feed whose secret token is kept as SHA-256 only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column(
                "language", sa.String(length=8), nullable=False, server_default="de"
            )
        )
        batch_op.add_column(
            sa.Column(
                "walk_in", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        for column in ("arrived_at", "called_at", "ended_at", "no_show_at"):
            batch_op.add_column(sa.Column(column, _WHEN, nullable=True))
        batch_op.add_column(sa.Column("told_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("settled", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_appointments_staff_mxid"), ["staff_mxid"])
    op.create_table(
        "calendar_feeds",
        sa.Column("staff_mxid", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("staff_mxid"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("calendar_feeds")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointments_staff_mxid"))
        for column in (
            "settled",
            "told_position",
            "no_show_at",
            "ended_at",
            "called_at",
            "arrived_at",
            "walk_in",
            "language",
            "phone",
            "email",
            "name",
        ):
            batch_op.drop_column(column)
