"""The video bot's calls (``video_calls``): which one runs in a case, started and
ended by ``!video`` / ``!video end``."""

from __future__ import annotations

from sqlalchemy import select, update

from bridge.clock import utcnow
from bridge.db.tables import TableStore

from .models import VideoCall


class VideoCalls(TableStore):
    async def running(self, case_id: str) -> VideoCall | None:
        async with self.session() as s:
            return await s.scalar(
                select(VideoCall)
                .where(VideoCall.case_id == case_id, VideoCall.ended_at.is_(None))
                .order_by(VideoCall.id.desc())
                .limit(1)
            )

    async def start(
        self,
        case_id: str,
        *,
        conference_id: str,
        widget_id: str,
        audio_only: bool,
        started_by: str,
    ) -> VideoCall:
        call = VideoCall(
            case_id=case_id,
            conference_id=conference_id,
            widget_id=widget_id,
            audio_only=audio_only,
            started_by=started_by,
            started_at=utcnow(),
        )
        async with self.session.begin() as s:
            s.add(call)
        return call

    async def end(self, call_id: int) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(VideoCall)
                .where(VideoCall.id == call_id, VideoCall.ended_at.is_(None))
                .values(ended_at=utcnow())
            )
