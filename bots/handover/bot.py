"""The hand-over bot: wraps ``!transfer`` (a target ``<partner>:<department>``
is a partner authority's), serves the citizen's consent
(``POST /api/v1/cases/{case_id}/handover``) and watches case rooms for what
partners do in them: invite our bot (we take a case), answer a hand-over, leave
(they are done)."""

from __future__ import annotations

import logging
from typing import ClassVar

from aiohttp import web
from mautrix.types import Event, EventType, Membership, StateEvent

from bridge.api.citizen import bearer, read_json
from bridge.caserooms import is_remote_citizen
from bridge.commands import Command
from bridge.errors import InvalidField
from bridge.i18n import staff_text
from bridge.jobs import JobRun
from bridge.lifecycle import Kind, State
from bridge.plugins import BotContext

from .partner import PartnerSide
from .town import ANSWER, CLOSED, DEADLINE_JOB, INVITE_JOB, TAKE_JOB, TownSide
from .waiting import BACK_JOB, MOVES, STATUS, STATUS_JOB, Waiting

log = logging.getLogger("buergerchat.handover")
#: Attempts at inviting the partner (backing off up to 10 minutes) before the
#: hand-over counts as refused ("not reachable") and the case stays.
INVITE_ATTEMPTS = 12
#: Tells the handing partner when we close a case we took (town.CLOSED).
CLOSED_JOB = "handover.closed"


class HandoverBot:
    #: After the workflow bot, whose !transfer it wraps.
    order: ClassVar[int] = 12
    name = "handover"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.town = TownSide(ctx)
        self.partner = PartnerSide(ctx)
        self.waiting = Waiting(ctx, self.town, self.partner)
        self.town.on_taken = self.waiting.show_current
        self.town.on_returned = self.waiting.handed_back
        self.partner.on_taken = self.waiting.status_later
        self._local = ctx.commands.handler("transfer")
        ctx.commands.register(
            "transfer",
            self._transfer,
            staff_text("usage.transfer", "de"),
            staff_text("help.transfer", "de"),
        )
        ctx.jobs.kind(
            INVITE_JOB,
            self.town.invite_job,
            max_attempts=INVITE_ATTEMPTS,
            on_parked=self.town.unreachable,
        )
        # Retried for ever: the other side must learn of it (a case given
        # back would otherwise stay handed over there).
        ctx.jobs.kind(CLOSED_JOB, self._closed)
        ctx.jobs.kind(TAKE_JOB, self.partner.take_job, max_attempts=INVITE_ATTEMPTS)
        ctx.jobs.kind(DEADLINE_JOB, self.town.deadline_job)
        # Retried for ever: a partner's case must not be stranded (given back).
        ctx.jobs.kind(STATUS_JOB, self.waiting.status_job)
        ctx.jobs.kind(BACK_JOB, self.waiting.back_job)
        ctx.cases.lifecycle.react(Kind.CLOSED, CLOSED_JOB)
        if ctx.config.federation.open:
            for kind in MOVES:  # where a partner's case stands, told back
                ctx.cases.lifecycle.subscribe(kind, self.waiting.on_moved)
            ctx.cases.lifecycle.react(Kind.HANDED_BACK, BACK_JOB)
            ctx.cases.timeline.watchers.append(self.waiting.watch)
            ctx.appservice.on_event(self.on_event)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/cases/{case_id}/handover", self.consent)]

    async def consent(self, request: web.Request) -> web.Response:
        case = await self.ctx.cases.authorize(
            request.match_info["case_id"], bearer(request)
        )
        body = await read_json(request)
        agree, ask = body.get("consent"), body.get("ask")
        if not isinstance(agree, bool):
            raise InvalidField(
                "consent",
                "Send consent: true to agree to the hand-over, false to keep "
                "the case here.",
            )
        if ask is not None and (not isinstance(ask, int) or isinstance(ask, bool)):
            raise InvalidField(
                "ask",
                "Send the ask number of the question you answer, or leave it out.",
            )
        return web.json_response(await self.town.consent(case, agree, ask))

    async def _closed(self, run: JobRun) -> None:
        """Kind.CLOSED (a durable reaction): the other side of a hand-over
        closes its case too (town.CLOSED in the room)."""
        event = await self.ctx.cases.lifecycle.event(int(run.payload["event"]))
        case = await self.ctx.store.get_case(event.case_id) if event else None
        if event is None or case is None or not case.room_id:
            return
        if is_remote_citizen(self.ctx.config, case):
            # A case a partner handed us: closed, or given back to it.
            back = await self.town.latest(case.case_id, Kind.HANDED_BACK, ())
            reason = str(back.data.get("reason") or "–") if back else None
            await self.town.tell_closed(case, returned=reason)
            return
        flight = await self.town.in_flight(case.case_id)
        if event.from_state == State.HANDED_OVER or flight is not None:
            await self.town.tell_closed(case)
        if flight is not None:
            partner = self.ctx.config.federation.partner(str(flight.data["partner"]))
            if partner is not None:
                await self.town.withdraw(case, partner)

    async def _transfer(self, command: Command) -> None:
        target, _, note = command.args.partition(" ")
        federation = self.ctx.config.federation
        if ":" not in target or not federation.open:
            if self._local is not None:
                await self._local(command)
            return
        partner_id, _, department = target.partition(":")
        partner = federation.partner(partner_id.strip().lower())
        answer = self.ctx.commands.answer
        if partner is None:
            known = ", ".join(p.id for p in federation.partners)
            await answer(
                command, "reply.partner_unknown", partner=partner_id, known=known
            )
            return
        department = department.strip().lower()
        if department not in partner.departments:
            await answer(
                command,
                "reply.partner_department",
                partner=partner.name,
                department=department,
                known=", ".join(partner.departments),
            )
            return
        history = await self.ctx.cases.lifecycle.history(command.case.case_id)
        if command.case.state == State.LIVE and any(
            e.kind == Kind.HANDED_OVER and e.data.get("partner") == partner.id
            for e in history
        ):
            # It gave this case back: its record of this room is closed, and
            # its bot (still a member, to verify it) takes no second one.
            await answer(command, "reply.partner_had_it", partner=partner.name)
            return
        await self.town.ask(command, partner, department, note.strip())

    async def on_event(self, event: Event) -> None:
        """What a partner does in a room we are in."""
        if not isinstance(event, StateEvent):
            return
        partner = self.ctx.config.federation.of_user(str(event.sender))
        if partner is None:
            return
        if event.type == ANSWER:
            await self.town.on_answer(event, partner)
            return
        if event.type == CLOSED:
            await self.town.on_partner_done(event, partner)
            return
        if event.type == STATUS:
            await self.waiting.on_status(event, partner)
            return
        if event.type != EventType.ROOM_MEMBER:
            return
        membership = event.content.membership
        if (
            membership == Membership.INVITE
            and event.state_key == self.ctx.config.bot_mxid
        ):
            await self.partner.on_invite(event, partner)
        elif membership == Membership.LEAVE and event.state_key == partner.bot_mxid:
            await self.town.on_partner_done(event, partner)
