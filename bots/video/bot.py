"""``!video`` / ``!audio`` / ``!video end`` in a case room: a Jitsi conference as an
Element widget for staff, and a join button for the citizen."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web
from mautrix.types import RoomID

from bridge.api.citizen import bearer
from bridge.clock import utcnow
from bridge.commands import Command
from bridge.db.models import Case
from bridge.errors import NotFound, Unavailable
from bridge.i18n import say, staff_text
from bridge.lifecycle import InvalidTransition, Kind, State
from bridge.plugins import BotContext

from .calls import VideoCalls
from .jitsi import (
    conference_url,
    iframe_api_url,
    participant_token,
    room_path,
)
from .models import VideoCall
from .section import VideoSettings, csp_sources, read_config
from .start import WIDGET_STATE, begin_call, moderator_url
from .widget_event import removal_content, widget_id_for, widget_state_key

log = logging.getLogger("buergerchat.video")


class VideoBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 20
    name = "video"
    config_section: ClassVar[str] = "video"
    read_config = staticmethod(read_config)
    csp_sources = staticmethod(csp_sources)

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.video: VideoSettings = ctx.config.plugin(self.config_section)
        self.settings = self.video.jitsi
        self.calls = VideoCalls(ctx.store.engine)
        for name, handler in (("video", self._video), ("audio", self._audio)):
            ctx.commands.register(
                name,
                handler,
                staff_text(f"usage.{name}", "de"),
                staff_text(f"help.{name}", "de"),
            )

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/cases/{case_id}/video", self.citizen_join)]

    async def _video(self, command: Command) -> None:
        await self._toggle(command, audio_only=False)

    async def _audio(self, command: Command) -> None:
        await self._toggle(command, audio_only=True)

    async def _toggle(self, command: Command, *, audio_only: bool) -> None:
        answer = self.ctx.commands.answer
        if self.settings is None:
            await answer(command, "reply.video_not_set_up")
            return
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        current = await self.calls.running(case.case_id)
        if command.args.lower() in ("end", "ende", "stop"):
            if not current:
                await answer(command, "reply.no_call")
                return
            await self._end(case, command, current)
            return
        widget_id = widget_id_for(str(command.event.event_id))
        if current and current.widget_id != widget_id:
            await answer(command, "reply.call_running")
            return
        await self._begin(case, command, audio_only, widget_id, current)

    async def _begin(
        self,
        case: Any,
        command: Command,
        audio_only: bool,
        widget_id: str,
        resumed: VideoCall | None,
    ) -> None:
        """Start the call (bots/video/start.py), then tell the staff member,
        with a moderator link when the server wants tokens."""
        assert self.settings is not None
        sender = command.sender
        case.room_id = case.room_id or command.event.room_id
        call = await begin_call(
            self.ctx,
            self.settings,
            self.calls,
            case,
            sender=sender,
            audio_only=audio_only,
            widget_id=widget_id,
            resumed=resumed,
        )
        language = self.ctx.commands.language_of(sender)
        started = "audio_started" if call.audio_only else "video_started"
        text = staff_text(f"reply.{started}", language)
        if self.settings.tokens_enabled:
            url = moderator_url(self.ctx, self.settings, call.conference_id, sender)
            text += "\n" + staff_text("reply.moderator_link", language, url=url)
        await self.ctx.commands.reply(command.event.room_id, text)

    async def _end(self, case: Case, command: Command, video: VideoCall) -> None:
        """End the call: announced first (each step idempotent), recorded last, so
        a transaction retried after a break still finds the call running and
        finishes the announcement instead of answering "no call"."""
        room_id, sender = command.event.room_id, command.sender
        await self.ctx.appservice.intent.send_state_event(
            RoomID(room_id),
            WIDGET_STATE,
            removal_content(),
            state_key=widget_state_key(video.widget_id),
        )
        name = self.ctx.cases.staff_name(room_id, sender)
        ended = "audio_ended" if video.audio_only else "video_ended"
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(ended, case.language, name=name),
            kind="video_ended",
            event_type="video",
        )
        await self.ctx.commands.answer(command, f"reply.{ended}")
        await self.calls.end(video.id)
        # An appointment's call (bots/booking): the case goes on as a chat.
        try:
            await self.ctx.cases.lifecycle.transition(
                case.case_id,
                State.LIVE,
                kind=Kind.CALL_ENDED,
                expect=frozenset({State.IN_CALL}),
                actor=sender,
            )
        except InvalidTransition:
            pass  # no appointment's call

    async def citizen_join(self, request: web.Request) -> web.Response:
        """What the widget needs to embed the running conference for the citizen."""
        case = await self.ctx.cases.authorize(
            request.match_info["case_id"], bearer(request)
        )
        video = await self.calls.running(case.case_id)
        if video is None:
            raise NotFound("There is no video call in this case right now.")
        if self.settings is None:
            raise Unavailable("Video is not set up on this server.")
        name = case.citizen_name or "Bürger*in"
        token = participant_token(
            self.settings,
            video.conference_id,
            name,
            case.ghost_mxid,
            moderator=False,
            now=utcnow(),
        )
        return web.json_response(
            {
                "domain": self.settings.domain,
                "room": room_path(self.settings, video.conference_id),
                "jwt": token,
                "audio_only": video.audio_only,
                "display_name": name,
                "join_url": conference_url(self.settings, video.conference_id, token),
                "iframe_api_url": iframe_api_url(self.settings),
                "helpline": self.video.helpline,
            }
        )
