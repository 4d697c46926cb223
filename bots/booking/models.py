"""The booking bot's table: each staff member's calendar feed (the appointments
themselves are the core's, bridge.db.models.Appointment, erased with their
case)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base


class CalendarFeed(Base):
    """The secret of one staff member's ICS feed URL, as SHA-256 only; a new
    ``!calendar`` replaces it (the old URL stops working)."""

    __tablename__ = "calendar_feeds"

    staff_mxid: Mapped[str] = mapped_column(String(255), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
