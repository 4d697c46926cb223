"""Tables of the bridge database. Synapse keeps message content; we keep what the
citizen side and the bots need: cases, tokens, the citizen timeline, the durable
inbox of appservice transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Case(Base):
    __tablename__ = "cases"

    number: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), unique=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    department: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    citizen_name: Mapped[str | None] = mapped_column(String(200))
    ghost_mxid: Mapped[str] = mapped_column(String(255), unique=True)
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    assignee: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseToken(Base):
    """A citizen's bearer token for one case; only its SHA-256 is kept."""

    __tablename__ = "case_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class CaseEvent(Base):
    """One entry of the timeline the citizen sees; ``seq`` is the public cursor."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "client_id", name="uq_case_events_client_id"),
        Index("ix_case_events_case_seq", "case_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(16))
    sender_name: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    ts: Mapped[datetime]
    client_id: Mapped[str | None] = mapped_column(String(100))
    matrix_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    delivery: Mapped[str] = mapped_column(String(16), default="delivered")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Transaction(Base):
    """An appservice transaction from Synapse, stored before it is acknowledged.

    Synapse numbers transactions from 1 again after a restart (on SQLite its id
    generator starts from the rows it kept), so a transaction id alone does not
    identify one: the same id with another body is new work. Events are
    deduplicated by their id (:class:`SeenEvent`)."""

    __tablename__ = "as_inbox"
    __table_args__ = (
        UniqueConstraint("txn_id", "body_hash", name="uq_as_inbox_txn_body"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None] = mapped_column(index=True)


class SeenEvent(Base):
    """A Matrix event the inbox has worked off; kept for a while, so that an event
    Synapse sends again (in a renumbered or resent transaction) is not."""

    __tablename__ = "as_seen_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class MatrixSend(Base):
    """One event the bridge or a bot sends into a room, stored before it is sent.

    ``key`` makes the send idempotent (the same key again is the same send); the
    key also goes into the event content as ``de.buergerchat.send_id``, so that
    after any crash the bridge can tell whether an earlier attempt reached the
    room before it tries again (Synapse forgets appservice transaction ids when
    it restarts)."""

    __tablename__ = "matrix_sends"
    __table_args__ = (Index("ix_matrix_sends_room_state", "room_id", "state", "seq"),)

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    room_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending (not known to be in the room), sent, failed (Synapse refused it).
    state: Mapped[str] = mapped_column(String(16), index=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
