"""appointments and their holds (virtual citizen office)

Revision ID: 0011
Revises: 0010

A video appointment takes a person's time: one row per 5-minute step it and
its buffer cover, keyed by person and step, so two bookings of the same time
cannot both be written, whichever process writes them (issue "Virtuelles
Bürgerbüro": 20 parallel bookings of one slot, exactly one wins).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "appointments",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("staff_mxid", sa.String(length=255), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointments_case_id"), ["case_id"])
        batch_op.create_index(batch_op.f("ix_appointments_start"), ["start"])
    op.create_table(
        "appointment_holds",
        sa.Column("staff_mxid", sa.String(length=255), nullable=False),
        sa.Column("unit", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.appointment_id"],
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_mxid", "unit"),
    )
    with op.batch_alter_table("appointment_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_holds_appointment_id"), ["appointment_id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("appointment_holds")
    op.drop_table("appointments")
