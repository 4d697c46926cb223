"""Tables of the bridge database. Synapse keeps message content; we keep what the
citizen side and the bots need: cases, tokens, the citizen timeline, the durable
inbox of appservice transactions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Case(Base):
    __tablename__ = "cases"
    # SQLite: a number (and so a reference) is never given twice, even after
    # the newest case was erased.
    __table_args__ = {"sqlite_autoincrement": True}

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
    #: The staff routing invited last (the room is made with them in it).
    invited: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: When routing last sent the case to staff (round robin resumes from it).
    routed_at: Mapped[datetime | None]
    #: While queued: the place and wait the citizen was last told.
    queue_position: Mapped[int | None]
    queue_wait_minutes: Mapped[int | None]
    #: Live hours ended while the citizen waited; they were offered the form.
    queue_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the team room was told about the case.
    announced_at: Mapped[datetime | None]
    #: Who opened it, pseudonymously: an HMAC of the client address under a
    #: secret of this installation (bridge.blocks), never the address itself.
    client_key: Mapped[str | None] = mapped_column(String(64), index=True)


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


class Job(Base):
    """One unit of work for later or again: a delivery, a scan, a mail, a
    notice, a reminder, a purge, a recurring tick (see :mod:`bridge.jobs`).

    ``key`` makes enqueueing idempotent; ``state`` is ``queued`` (waits for
    ``run_at``), ``running`` (held by ``lease_owner`` until ``lease_until``; a
    crashed holder's lease runs out and another process takes the job), ``done``
    or ``parked`` (given up after its attempts; ``last_error`` says why)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_at", "state", "run_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Asked for again while running: queued for this time when the run ends.
    rerun_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The case the job belongs to (erased with it); none for service-wide jobs.
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class CaseTransition(Base):
    """A domain event: one move of a case through its lifecycle
    (:mod:`bridge.lifecycle`), written in the same transaction as the move."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    #: Who moved it (a staff member's Matrix ID), none for the citizen or a rule.
    actor: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime]


class Block(Base):
    """An address (by its client key) or a case that may not open chats or
    leave messages any more, until ``expires_at`` (``!block`` in a case room)."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_key: Mapped[str | None] = mapped_column(String(64), index=True)
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="SET NULL"), index=True
    )
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]


class PrivacyAudit(Base):
    """One act of data protection: a case erased on request or by expiry, an
    export handed out, files or mail bodies expired. Holds no personal data:
    the case's reference and department, who asked (``cli``, ``retention`` or an
    admin's Matrix ID), and counts of what went (``detail``)."""

    __tablename__ = "privacy_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    #: erased, expired, exported, files_expired, mail_bodies_expired
    action: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(40), index=True)
    department: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class Lease(Base):
    """Work only one bridge process may do at a time (the appservice inbox):
    ``holder`` renews it before ``expires_at``; when a holder dies, the lease
    runs out and another process takes it (see :mod:`bridge.cluster`)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class RoutingPointer(Base):
    """Per department, the staff member round robin picked last: read and
    written under the routing lock, so every bridge process continues the
    same rotation."""

    __tablename__ = "routing_pointers"

    department: Mapped[str] = mapped_column(String(32), primary_key=True)
    mxid: Mapped[str] = mapped_column(String(255))


class Appointment(Base):
    """A booked video appointment (virtual citizen office): who takes it,
    when, which services. Erased with its case."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    appointment_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    department: Mapped[str] = mapped_column(String(32))
    services: Mapped[list[str]] = mapped_column(JSON)
    staff_mxid: Mapped[str] = mapped_column(String(255), index=True)
    start: Mapped[datetime] = mapped_column(index=True)
    end: Mapped[datetime]
    #: booked or pending (its time held; pending until confirmed), cancelled,
    #: no_show or expired (its time free again)
    state: Mapped[str] = mapped_column(String(16))
    #: The citizen's request id: the same booking asked for twice is one.
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    #: Whom the confirmation, the reminders and a no-show mail go to.
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8), default="de", server_default="de")
    #: Made on the spot in the waiting room ("unmittelbar wahrnehmen").
    walk_in: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: The visit: in the waiting room, pulled into the call, call over, or
    #: not come.
    arrived_at: Mapped[datetime | None]
    called_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    no_show_at: Mapped[datetime | None]
    #: The place in the waiting room the citizen was last told.
    told_position: Mapped[int | None]
    #: The state whose follow-up (case, notices, mail, timers) is complete:
    #: the sweep finishes what a crash left undone.
    settled: Mapped[str | None] = mapped_column(String(16))


class AppointmentHold(Base):
    """One 5-minute step of one person's time taken by an appointment (its
    duration and the buffer after it). The primary key makes the database
    itself refuse a second appointment in the same time, from any process."""

    __tablename__ = "appointment_holds"

    staff_mxid: Mapped[str] = mapped_column(String(255), primary_key=True)
    unit: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    appointment_id: Mapped[str] = mapped_column(
        String(40),
        ForeignKey("appointments.appointment_id", ondelete="CASCADE"),
        index=True,
    )
