"""exactly once both ways: inbox keyed by txn id and body, seen events, sends

Revision ID: 0004
Revises: 0003

Synapse renumbers appservice transactions after a restart, so the inbox is keyed
by (txn_id, body_hash) and events are deduplicated by event id; every event the
bridge sends is stored first (matrix_sends) and stamped, so a retry after a crash
of either side posts once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "as_inbox",
        sa.Column("seq", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("txn_id", "body_hash", name="uq_as_inbox_txn_body"),
    )
    with op.batch_alter_table("as_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_as_inbox_processed_at"), ["processed_at"], unique=False
        )
    # Work not done yet moves over (its hash is filled in as "legacy-<seq>", which
    # can never collide with a SHA-256); what was worked off is not needed.
    op.execute(
        "INSERT INTO as_inbox (txn_id, body_hash, body, received_at, processed_at) "
        "SELECT txn_id, 'legacy-' || CAST(seq AS VARCHAR(20)), body, received_at, "
        "NULL FROM as_transactions WHERE processed_at IS NULL ORDER BY seq"
    )
    with op.batch_alter_table("as_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_as_transactions_processed_at"))
    op.drop_table("as_transactions")

    op.create_table(
        "as_seen_events",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("as_seen_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_as_seen_events_seen_at"), ["seen_at"], unique=False
        )

    op.create_table(
        "matrix_sends",
        sa.Column("seq", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("matrix_sends", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_sends_state"), ["state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_matrix_sends_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            "ix_matrix_sends_room_state", ["room_id", "state", "seq"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("matrix_sends")
    op.drop_table("as_seen_events")
    op.create_table(
        "as_transactions",
        sa.Column("seq", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("txn_id"),
    )
    with op.batch_alter_table("as_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_as_transactions_processed_at"), ["processed_at"]
        )
    op.drop_table("as_inbox")
