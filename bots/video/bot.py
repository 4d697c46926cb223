"""``!video`` / ``!audio`` / ``!video end`` in a case room: a Jitsi conference as an
Element widget for staff, and a join button for the citizen."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web
from mautrix.types import EventType, RoomID

from bridge.api.citizen import bearer
from bridge.clock import utcnow
from bridge.commands import Command
from bridge.db.models import Case
from bridge.errors import NotFound, Unavailable
from bridge.messages import say
from bridge.plugins import BotContext

from .calls import VideoCalls
from .jitsi import (
    conference_url,
    iframe_api_url,
    new_conference_id,
    participant_token,
    room_path,
)
from .models import VideoCall
from .section import VideoSettings, csp_sources, read_config
from .widget_event import (
    WIDGET_EVENT_TYPE,
    jitsi_widget_content,
    new_widget_id,
    removal_content,
    widget_state_key,
)

log = logging.getLogger("buergerchat.video")
WIDGET_STATE = EventType.find(WIDGET_EVENT_TYPE, t_class=EventType.Class.STATE)


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
        ctx.commands.register(
            "video", self._video, "!video [end]", "Videoberatung starten / beenden"
        )
        ctx.commands.register(
            "audio",
            self._audio,
            "!audio [end]",
            "Telefonat (nur Ton) starten / beenden",
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
        reply = self.ctx.commands.reply
        room_id = command.event.room_id
        if self.settings is None:
            await reply(room_id, "Video ist nicht eingerichtet (video.jitsi_domain).")
            return
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        current = await self.calls.running(case.case_id)
        if command.args.lower() in ("end", "ende", "stop"):
            if not current:
                await reply(room_id, "Es läuft keine Videoberatung.")
                return
            await self._end(case, room_id, current, command.sender)
            return
        if current:
            await reply(
                room_id, "Es läuft bereits eine Beratung. Beenden mit !video end."
            )
            return
        await self._begin(case, room_id, command.sender, audio_only)

    async def _begin(
        self, case: Any, room_id: str, sender: str, audio_only: bool
    ) -> None:
        assert self.settings is not None
        conference_id = new_conference_id()
        widget_id = new_widget_id()
        content = jitsi_widget_content(
            self.settings,
            conference_id,
            audio_only=audio_only,
            creator_user_id=sender,
            room_name=case.reference,
            widget_id=widget_id,
        )
        await self.ctx.appservice.intent.send_state_event(
            RoomID(room_id),
            WIDGET_STATE,
            content,
            state_key=widget_state_key(widget_id),
        )
        name = self.ctx.cases.staff_name(room_id, sender)
        await self.calls.start(
            case.case_id,
            conference_id=conference_id,
            widget_id=widget_id,
            audio_only=audio_only,
            started_by=name,
        )
        what = "ein Telefonat" if audio_only else "eine Videoberatung"
        started = "audio_started" if audio_only else "video_started"
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(started, case.language, name=name),
            kind="video_started",
            audio_only=audio_only,
            event_type="video",
        )
        text = (
            f"{what[0].upper()}{what[1:]} läuft; "
            "der Bürger sieht einen Beitreten-Knopf."
        )
        if self.settings.tokens_enabled:
            token = participant_token(
                self.settings,
                conference_id,
                name,
                sender,
                moderator=True,
                now=utcnow(),
            )
            text += (
                "\nBeitreten als Moderator (Link 5 Minuten gültig): "
                + conference_url(self.settings, conference_id, token)
            )
        await self.ctx.commands.reply(room_id, text)

    async def _end(
        self, case: Case, room_id: str, video: VideoCall, sender: str
    ) -> None:
        await self.ctx.appservice.intent.send_state_event(
            RoomID(room_id),
            WIDGET_STATE,
            removal_content(),
            state_key=widget_state_key(video.widget_id),
        )
        await self.calls.end(video.id)
        name = self.ctx.cases.staff_name(room_id, sender)
        what = "Das Telefonat" if video.audio_only else "Die Videoberatung"
        ended = "audio_ended" if video.audio_only else "video_ended"
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(ended, case.language, name=name),
            kind="video_ended",
            event_type="video",
        )
        await self.ctx.commands.reply(room_id, f"{what} ist beendet.")

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
