"""The durable outbox table: one row per logical e-mail.

The finished RFC 5322 bytes are stored at enqueue time, so every retry sends the
very same message (same ``Message-ID``, same ``Date``) and a configuration change
between enqueue and delivery cannot alter a mail that is already promised.

``next_attempt_at`` does double duty: for a ``queued`` row it is when the next try
is due; for a ``sending`` row it is when the worker's lease runs out. A ``sending``
row whose lease has run out belongs to a worker that died mid-send and is picked up
again like a due ``queued`` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base, BigIntPK

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
PARKED = "parked"
STATES = (QUEUED, SENDING, SENT, PARKED)


class OutboxMail(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_state_due", "state", "next_attempt_at"),
        Index("ix_mail_outbox_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # The same logical mail enqueued twice is stored once, e.g.
    # "offline-confirmation:<case_id>".
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    # With angle brackets, as in the header: "<…@example.org>".
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Erasing a case erases its mails too, queued or sent.
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE")
    )

    def __repr__(self) -> str:
        return (
            f"<OutboxMail {self.id} {self.dedup_key!r} {self.state} "
            f"attempts={self.attempts}>"
        )
