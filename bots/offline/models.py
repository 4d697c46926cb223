"""The offline-message table: one row per message left outside the live hours.

The row is written *before* the case is opened, keyed by the widget's
``client_id``: a repeated submission (a double click, a retry after a lost
answer) finds it and gets the same case, and a crash half-way is finished by the
next request or by the bot's retry loop, because the row holds the whole form.

The contact data lives here, not in the case: it is what the e-mails need, and
erasing the case (``ON DELETE CASCADE``) erases it too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base, BigIntPK


class OfflineRecord(Base):
    __tablename__ = "offline_messages"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    # Null only between claiming the client id and opening the case.
    case_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), unique=True
    )
    #: True when a queued chat was turned into this message.
    converted: Mapped[bool] = mapped_column(default=False)
    department: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    #: When the notices in Matrix were posted (the mails are queued before).
    forwarded_at: Mapped[datetime | None]
    #: The last "there is an answer" mail; none again until the citizen came back.
    answer_notified_at: Mapped[datetime | None]
    #: The last time the citizen opened the case through a personal link.
    resumed_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<OfflineRecord {self.id} {self.client_id!r} case={self.case_id}>"
