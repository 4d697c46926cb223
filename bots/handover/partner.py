"""The taking side of a hand-over: a partner authority's bot invites ours into
one of its case rooms.

Only an invite from a declared partner is followed (Synapse's allow-list keeps
everyone else out anyway). The hand-over in the room (``de.buergerchat.handover``
for our server) names one of our departments; we route the case by our own
rules: outside that department's hours it is refused (the case stays with the
partner), otherwise it becomes a case of ours whose citizen is the partner's
ghost, our staff are invited into the partner's room and our team room hears of
it. The answer goes back into the room (``de.buergerchat.handover_answer``).
Closing it here clears our people out and our bot leaves, which tells the
partner (bridge.caserooms.clear_room).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from mautrix.errors import MatrixRequestError
from mautrix.types import JSON, RoomID, StateEvent, UserID

from bridge.caserooms import is_remote_citizen
from bridge.clock import utcnow
from bridge.config import Department
from bridge.db.models import Case
from bridge.federation import Partner
from bridge.i18n import staff_line, staff_text
from bridge.jobs import JobRun
from bridge.lifecycle import Kind
from bridge.plugins import BotContext

from .town import ANSWER, CLOSED, HANDOVER, plain

log = logging.getLogger("buergerchat.handover")


class PartnerSide:
    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    async def on_invite(self, event: StateEvent, partner: Partner) -> None:
        """Our bot was invited by a partner: join, read the hand-over, take it
        or say why not."""
        room = RoomID(str(event.room_id))
        bot = self.ctx.appservice.intent
        known = await self.ctx.store.case_by_room(room)
        if known is None:
            await bot.join_room(room, servers=[partner.server_name])
        own = self.ctx.config.homeserver.server_name
        try:
            handover = plain(await bot.get_state_event(room, HANDOVER, own))
        except MatrixRequestError:
            handover = {}
        department = self.ctx.config.department(str(handover.get("department")))
        if known is not None:
            await self._answer(room, {"accepted": True, "reference": known.reference})
            return
        why = await self._why_not(partner, department, handover)
        if why is not None:
            await self._answer(room, {"accepted": False, "reason": why})
            await bot.leave_room(room)
            log.info("hand-over from %s in %s refused: %s", partner.id, room, why)
            return
        assert department is not None
        await self._take(room, partner, department, handover)

    async def _why_not(
        self, partner: Partner, department: Department | None, handover: dict[str, Any]
    ) -> str | None:
        """Why we cannot take it (in German: the partner's staff read it)."""
        if department is None:
            return f"unbekannte Abteilung „{handover.get('department')}“"
        if not str(handover.get("citizen") or "").endswith(f":{partner.server_name}"):
            return "keine Bürgerin / kein Bürger des Partners im Raum"
        router = self.ctx.cases.router
        if router is not None:
            availability = (await router.availability()).get(department.id)
            if availability is not None and not availability.chat:
                return f"{department.name} ist gerade nicht besetzt"
        return None

    async def _take(
        self,
        room: RoomID,
        partner: Partner,
        department: Department,
        handover: dict[str, Any],
    ) -> None:
        """Open our case in the partner's room, invite our staff, tell the team
        and the room, and answer."""
        cases = self.ctx.cases
        reference, note = str(handover.get("reference") or ""), handover.get("note")
        case, _ = await cases.open_case(
            department=department,
            topic=None,
            citizen_name=handover.get("citizen_name"),
            language=str(handover.get("language") or "de"),
            room=False,
            ghost_mxid=str(handover["citizen"]),
            opened={"from_partner": partner.id, "partner_reference": reference},
        )
        await self.ctx.store.update_case(case.case_id, room_id=str(room))
        case.room_id = str(room)
        if cases.router is not None:
            invite = await cases.router.transfer(
                case, department, actor=partner.bot_mxid, note=note
            )
        else:
            invite = tuple(s.mxid for s in department.staff)
        for mxid in invite:
            try:
                await self.ctx.appservice.intent.invite_user(room, UserID(mxid))
            except MatrixRequestError as e:
                log.info("could not invite %s to %s: %s", mxid, room, e)
        values = {"partner": partner.name, "reference": reference, "note": note or "–"}
        await self._tell(case, room, invite, values)
        await self._answer(room, {"accepted": True, "reference": case.reference})
        await cases.lifecycle.record(
            case.case_id,
            Kind.HANDED_OVER,
            actor=partner.bot_mxid,
            data={"from": partner.id, "reference": reference},
        )
        log.info(
            "case %s taken over from %s (%s)", case.reference, partner.id, reference
        )

    async def _tell(
        self, case: Case, room: RoomID, invite: tuple[str, ...], values: dict[str, str]
    ) -> None:
        """Our record, our team room and the staff in the room hear of it."""
        line = staff_text("notice.handover_received", "de", **values)
        await self.ctx.cases.add_system_event(
            case.case_id, line, kind="handover_received", partner=values["partner"]
        )
        names = ", ".join(self.ctx.cases.staff_name(str(room), m) for m in invite)
        if await self.ctx.team.announce_case(
            case, extra=staff_line("team.handover_received", invited=names, **values)
        ):
            await self.ctx.store.update_case(case.case_id, announced_at=utcnow())
        await self.ctx.commands.reply(str(room), line)

    async def closed(self, run: JobRun) -> None:
        """Kind.CLOSED of a case we took: the partner hears of it in the room
        (our bot stays there; see town.CLOSED)."""
        event = await self.ctx.cases.lifecycle.event(int(run.payload["event"]))
        case = await self.ctx.store.get_case(event.case_id) if event else None
        if case is None or not case.room_id:
            return
        if not is_remote_citizen(self.ctx.config, case):
            return
        await self.ctx.appservice.intent.send_state_event(
            RoomID(case.room_id),
            CLOSED,
            cast(JSON, {"closed": True, "reference": case.reference}),
            state_key=self.ctx.config.homeserver.server_name,
        )

    async def _answer(self, room: RoomID, content: dict[str, Any]) -> None:
        await self.ctx.appservice.intent.send_state_event(
            room,
            ANSWER,
            cast(JSON, content),
            state_key=self.ctx.config.homeserver.server_name,
        )
