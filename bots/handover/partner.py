"""The taking side of a hand-over: a partner authority's bot invites ours into
one of its case rooms.

Only an invite from a declared partner's bot is followed (Synapse's allow-list
keeps everyone else out anyway), and only a hand-over that bot wrote into the
room (``de.buergerchat.handover`` for our server) counts. It names one of our
departments; we route the case by our own rules: when neither that department
nor its fallback has live hours with someone online, it is refused (the case
stays with the partner); otherwise it becomes a case of ours whose citizen is
the partner's ghost, our staff are invited into the partner's room (or it waits
in the department's line, bots.handover.waiting) and our team room hears of
it. The answer goes back into the room (``de.buergerchat.handover_answer``). Every step
may run again after a crash (the inbox works the invite off again) and finishes
what is missing. Closing it here (bots.handover.bot) writes
``de.buergerchat.handover_closed``; our bot stays in the room.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from mautrix.api import Method, Path
from mautrix.errors import MatrixRequestError, MNotFound
from mautrix.types import JSON, EventType, RoomID, StateEvent, UserID

from bridge.clock import utcnow
from bridge.config import Department
from bridge.db.models import Case
from bridge.federation import Partner
from bridge.i18n import staff_line, staff_text
from bridge.jobs import GiveUp, JobRun
from bridge.lifecycle import Kind
from bridge.plugins import BotContext

from .town import ANSWER, CLOSED, HANDOVER, TAKE_JOB

log = logging.getLogger("buergerchat.handover")


class PartnerSide:
    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        #: bots.handover.waiting: where the case stands, written from now on.
        self.on_taken: Callable[[str], Awaitable[None]] | None = None

    async def on_invite(self, event: StateEvent, partner: Partner) -> None:
        """Our bot was invited by a partner's bot: the rest is a durable job
        (joining over federation or answering may fail for a while). An invite
        from anyone else of the partner (a staff member) is not followed:
        hand-overs go through its bridge, which asked the citizen first."""
        if event.sender != partner.bot_mxid:
            log.info("invite by %s (not %s) ignored", event.sender, partner.bot_mxid)
            return
        await self.ctx.jobs.enqueue(
            TAKE_JOB,
            f"handover-take:{event.event_id}",
            {"room": str(event.room_id), "partner": partner.id},
        )

    async def take_job(self, run: JobRun) -> None:
        """Join, read the hand-over, take it or say why not; again until done."""
        partner = self.ctx.config.federation.partner(str(run.payload["partner"]))
        if partner is None:
            raise GiveUp("the partner is no longer configured")
        room = RoomID(str(run.payload["room"]))
        bot = self.ctx.appservice.intent
        await bot.join_room(room, servers=[partner.server_name])
        case = await self.ctx.store.case_by_room(room)
        handover = await self.written_by(room, HANDOVER, partner, own=True)
        if case is not None:
            if case.closed_at is not None:
                why: str | None = "der Fall wurde hier schon abgeschlossen"
            else:
                department = self.ctx.config.department(case.department)
                why = None if department is not None else "Abteilung entfernt"
        elif await self.written_by(room, CLOSED, partner):
            why = "die Weitergabe wurde zurückgenommen"
        else:
            why, department = await self._route(partner, handover)
        if why is not None:
            await self._answer(room, {"accepted": False, "reason": why})
            if case is None:  # (with a case of ours, our record is here)
                await bot.leave_room(room)
            log.info("hand-over from %s in %s refused: %s", partner.id, room, why)
            return
        assert department is not None
        await self._take(room, partner, department, handover, case)

    async def written_by(
        self, room: RoomID, kind: EventType, partner: Partner, own: bool = False
    ) -> dict[str, Any]:
        """The content of state ``kind`` for our server (``own``) or the
        partner's, if the partner's bot wrote it (read with its sender)."""
        key = self.ctx.config.homeserver.server_name if own else partner.server_name
        try:
            found = await self.ctx.appservice.intent.api.request(
                Method.GET,
                Path.v3.rooms[room].state[str(kind)][key],
                query_params={"format": "event"},
            )
        except MNotFound:
            return {}
        if not isinstance(found, dict) or found.get("sender") != partner.bot_mxid:
            return {}
        content = found.get("content")
        return dict(content) if isinstance(content, dict) and content else {}

    async def _route(
        self, partner: Partner, handover: dict[str, Any]
    ) -> tuple[str | None, Department | None]:
        """Why we cannot take it (in German: the partner's staff read it), or
        the department that does: the one asked for, or its fallback when that
        one is not staffed now (our routing rules, as for our own citizens).
        Someone busy is no reason: the case waits in that line, where the
        citizen is shown their place (bots.handover.waiting)."""
        asked = str(handover.get("department") or "")
        department = self.ctx.config.department(asked)
        if not handover:
            return "keine Übergabe des Partners im Raum", None
        if department is None:
            return f"unbekannte Abteilung „{asked}“", None
        if not str(handover.get("citizen") or "").endswith(f":{partner.server_name}"):
            return "keine Bürgerin / kein Bürger des Partners im Raum", None
        router = self.ctx.cases.router
        if router is None:
            return None, department
        availability = (await router.availability()).get(department.id)
        if availability is None or not availability.chat:
            state = availability.state if availability else "closed"
            if state == "closed":
                return f"{department.name} hat gerade keine Sprechzeit", None
            return f"bei {department.name} ist gerade niemand angemeldet", None
        return None, self.ctx.config.department(availability.department) or department

    async def _take(
        self,
        room: RoomID,
        partner: Partner,
        department: Department,
        handover: dict[str, Any],
        case: Case | None,
    ) -> None:
        """Our case in the partner's room (opened once), told to our team and
        the room, joins our department's waiting line (routed at once when
        someone is free, else in turn), the answer; each step again if it
        broke off."""
        cases = self.ctx.cases
        reference, note = str(handover.get("reference") or ""), handover.get("note")
        if case is None:
            case, _ = await cases.open_case(
                department=department,
                topic=None,
                citizen_name=handover.get("citizen_name"),
                language=str(handover.get("language") or "de"),
                state="queued" if cases.router is not None else "live",
                room=False,
                ghost_mxid=str(handover["citizen"]),
                room_id=str(room),
                opened={"from_partner": partner.id, "partner_reference": reference},
            )
        values = {"partner": partner.name, "reference": reference, "note": note or "–"}
        await self._tell(case, room, values)
        # The answer first: a case given back (waiting.py) waits for it.
        await self._answer(
            room,
            {
                "accepted": True,
                "reference": case.reference,
                "department": department.id,
            },
        )
        history = await cases.lifecycle.history(case.case_id)
        if not any(e.kind == Kind.HANDOVER_RECEIVED for e in history):
            await cases.lifecycle.record(
                case.case_id,
                Kind.HANDOVER_RECEIVED,
                actor=partner.bot_mxid,
                data={"from": partner.id, "reference": reference},
            )
        if self.on_taken is not None:
            await self.on_taken(case.case_id)
        if cases.router is not None:
            await cases.router.drain()
        else:
            for staff in department.staff:
                try:
                    await self.ctx.appservice.intent.invite_user(
                        room, UserID(staff.mxid)
                    )
                except MatrixRequestError as e:
                    log.info("could not invite %s to %s: %s", staff.mxid, room, e)
        log.info(
            "case %s taken over from %s (%s)", case.reference, partner.id, reference
        )

    async def _tell(self, case: Case, room: RoomID, values: dict[str, str]) -> None:
        """Our record, our team room and the room hear of it."""
        line = staff_text("notice.handover_received", "de", **values)
        key = f"handover_received:{case.case_id}"
        await self.ctx.cases.add_system_event(
            case.case_id,
            line,
            kind="handover_received",
            key=key,
            partner=values["partner"],
        )
        if await self.ctx.team.announce_case(
            case,
            extra=staff_line("team.handover_received", **values),
            key=f"announce:{case.case_id}",
        ):
            await self.ctx.store.update_case(case.case_id, announced_at=utcnow())
        await self.ctx.commands.reply(str(room), line, key=key)

    async def _answer(self, room: RoomID, content: dict[str, Any]) -> None:
        await self.ctx.appservice.intent.send_state_event(
            room,
            ANSWER,
            cast(JSON, content),
            state_key=self.ctx.config.homeserver.server_name,
        )
