"""mail outbox and offline messages: durable e-mail, messages left when closed

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "mail_outbox",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mail_outbox_case_id", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_mail_outbox_state_due", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "offline_messages",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("converted", sa.Boolean(), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
        sa.UniqueConstraint("client_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("offline_messages")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_state_due")
        batch_op.drop_index("ix_mail_outbox_case_id")
    op.drop_table("mail_outbox")
