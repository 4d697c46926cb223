"""The transcript bot's table: where a closed case's PDF was archived and the
final hash of its chain (a download or a check compares against it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.db.models import Base


class TranscriptArchive(Base):
    __tablename__ = "transcript_archives"

    case_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True
    )
    final_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer)
    archived_at: Mapped[datetime]
