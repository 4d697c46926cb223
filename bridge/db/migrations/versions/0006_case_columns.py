"""a case's sub-states as real columns; video calls and transcript archives in
tables of their own; attachments.next_attempt_at dropped

Revision ID: 0006
Revises: 0005

The JSON column ``cases.extra`` held sub-states that four modules read and wrote
by key (invited, routed_at, queue, queue_closed, announced, video, transcript);
keys got lost in concurrent merges. Each is now a typed column of ``cases`` or a
row of the bot that owns it (``video_calls``, ``transcript_archives``). What an
older release wrote into ``extra`` is carried over, then the column goes.
``attachments.next_attempt_at`` was read by nothing since the scanner's retries
became ``scan.held`` jobs.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("invited", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("routed_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("queue_wait_minutes", sa.Integer(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "queue_closed", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column("announced_at", _WHEN, nullable=True))
    op.create_table(
        "video_calls",
        sa.Column("id", _BIGINT, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("conference_id", sa.String(length=128), nullable=False),
        sa.Column("widget_id", sa.String(length=128), nullable=False),
        sa.Column("audio_only", sa.Boolean(), nullable=False),
        sa.Column("started_by", sa.String(length=255), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("ended_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("video_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_video_calls_case_running", ["case_id", "ended_at"], unique=False
        )
    op.create_table(
        "transcript_archives",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("final_hash", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("archived_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id"),
    )
    _carry_over_extra()
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("extra")
        # The defaults only filled the rows that were there; the code sets both.
        batch_op.alter_column("invited", server_default=None)
        batch_op.alter_column("queue_closed", server_default=None)
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_attachments_state_next")
        batch_op.drop_column("next_attempt_at")


def _carry_over_extra() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    cases = sa.Table("cases", meta, autoload_with=bind)
    calls = sa.Table("video_calls", meta, autoload_with=bind)
    archives = sa.Table("transcript_archives", meta, autoload_with=bind)
    rows = bind.execute(
        sa.select(cases.c.case_id, cases.c.extra, cases.c.created_at, cases.c.closed_at)
    ).all()
    for case_id, extra, created_at, closed_at in rows:
        extra = extra or {}
        queue = extra.get("queue") or {}
        bind.execute(
            cases.update()
            .where(cases.c.case_id == case_id)
            .values(
                invited=list(extra.get("invited") or []),
                routed_at=_parse(extra.get("routed_at")),
                queue_position=queue.get("position"),
                queue_wait_minutes=queue.get("estimated_wait_minutes"),
                queue_closed=bool(extra.get("queue_closed")),
                # The old flag had no time; the case's opening is the best guess.
                announced_at=created_at if extra.get("announced") else None,
            )
        )
        _carry_over_video(bind, calls, case_id, extra.get("video"), created_at)
        archived = extra.get("transcript") or {}
        if archived.get("final_hash"):
            bind.execute(
                archives.insert().values(
                    case_id=case_id,
                    final_hash=archived["final_hash"],
                    path=str(archived.get("path") or ""),
                    pages=int(archived.get("pages") or 0),
                    archived_at=closed_at or created_at,
                )
            )


def _carry_over_video(
    bind: Any, calls: sa.Table, case_id: str, video: Any, created_at: Any
) -> None:
    if not video:
        return
    bind.execute(
        calls.insert().values(
            case_id=case_id,
            conference_id=video["conference_id"],
            widget_id=video["widget_id"],
            audio_only=bool(video.get("audio_only")),
            started_by=str(video.get("started_by") or ""),
            started_at=_parse(video.get("started_at")) or created_at,
        )
    )


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    when = datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def downgrade() -> None:
    """Downgrade schema (the sub-states go back into ``extra`` only as empty)."""
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", _WHEN, nullable=True))
        batch_op.create_index(
            "ix_attachments_state_next", ["state", "next_attempt_at"], unique=False
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extra", sa.JSON(), nullable=False, server_default="{}")
        )
    op.drop_table("transcript_archives")
    with op.batch_alter_table("video_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_video_calls_case_running")
    op.drop_table("video_calls")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for column in (
            "announced_at",
            "queue_closed",
            "queue_wait_minutes",
            "queue_position",
            "routed_at",
            "invited",
        ):
            batch_op.drop_column(column)
