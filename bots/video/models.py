"""The video bot's table: each call in a case room, running while ``ended_at`` is
empty (one at a time per case)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base, BigIntPK


class VideoCall(Base):
    __tablename__ = "video_calls"
    __table_args__ = (Index("ix_video_calls_case_running", "case_id", "ended_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE")
    )
    conference_id: Mapped[str] = mapped_column(String(128))
    widget_id: Mapped[str] = mapped_column(String(128))
    audio_only: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The staff member's name as the citizen saw it.
    started_by: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
