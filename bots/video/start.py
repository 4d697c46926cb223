"""Starting a call in a case room, for ``!video`` and for the virtual citizen
office's ``!next`` (bots/booking): recorded first, then announced — the Element
widget in the room and the citizen's "video started" line — each step
idempotent, so a retried transaction finishes the same call."""

from __future__ import annotations

from mautrix.types import EventType, RoomID

from bridge.clock import utcnow
from bridge.db.models import Case
from bridge.i18n import say
from bridge.plugins import BotContext

from .calls import VideoCalls
from .jitsi import (
    JitsiSettings,
    conference_url,
    new_conference_id,
    participant_token,
)
from .models import VideoCall
from .widget_event import WIDGET_EVENT_TYPE, jitsi_widget_content, widget_state_key

WIDGET_STATE = EventType.find(WIDGET_EVENT_TYPE, t_class=EventType.Class.STATE)


async def begin_call(
    ctx: BotContext,
    settings: JitsiSettings,
    calls: VideoCalls,
    case: Case,
    *,
    sender: str,
    audio_only: bool,
    widget_id: str,
    resumed: VideoCall | None = None,
) -> VideoCall:
    """The call of ``case`` started by ``sender`` (``resumed``: the one this very
    cause recorded before it broke off)."""
    name = ctx.cases.staff_name(case.room_id or "", sender)
    call = resumed or await calls.start(
        case.case_id,
        conference_id=new_conference_id(),
        widget_id=widget_id,
        audio_only=audio_only,
        started_by=name,
    )
    content = jitsi_widget_content(
        settings,
        call.conference_id,
        audio_only=call.audio_only,
        creator_user_id=sender,
        room_name=case.reference,
        widget_id=widget_id,
    )
    await ctx.appservice.intent.send_state_event(
        RoomID(case.room_id or ""),
        WIDGET_STATE,
        content,
        state_key=widget_state_key(widget_id),
    )
    started = "audio_started" if call.audio_only else "video_started"
    await ctx.cases.add_system_event(
        case.case_id,
        say(started, case.language, name=name),
        kind="video_started",
        audio_only=call.audio_only,
        event_type="video",
    )
    return call


def moderator_url(
    ctx: BotContext, settings: JitsiSettings, conference_id: str, sender: str
) -> str:
    """The conference link with a moderator token for a staff member."""
    name = ctx.cases.staff_name("", sender)
    token = participant_token(
        settings, conference_id, name, sender, moderator=True, now=utcnow()
    )
    return conference_url(settings, conference_id, token)
