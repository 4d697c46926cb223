"""The attachment table: every file that crosses the bridge, with its scan state.

A file is held on disk (``held_path``) from the moment it arrives until it is
delivered or refused, so that a clamd outage never loses a citizen's upload.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base, BigIntPK

#: Life cycle: pending → clean → delivered, or pending → infected / refused;
#: expired once the files period of ``retention`` ended (the file is gone).
STATES = ("pending", "clean", "infected", "refused", "delivered", "expired")


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("case_id", "client_id", name="uq_attachments_client_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    attachment_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    #: ``citizen`` (uploaded through the API) or ``staff`` (sent in the room).
    direction: Mapped[str] = mapped_column(String(8))
    client_id: Mapped[str | None] = mapped_column(String(100))
    #: The staff member's Matrix id for staff uploads (to tell them about a refusal).
    sender: Mapped[str | None] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255))
    mimetype: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str | None] = mapped_column(String(255))
    held_path: Mapped[str | None] = mapped_column(Text)
    mxc_uri: Mapped[str | None] = mapped_column(String(255))
    matrix_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
