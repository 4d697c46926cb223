"""The handing side of a hand-over to a partner authority.

``!transfer <partner>:<department> [note]`` asks the citizen first (the widget
shows who would get the case and what they would see); only with consent the
bot writes the hand-over into the room (``de.buergerchat.handover``, a state
event for the partner's server), lets the partner's bot act in the room and
invites it. The partner answers in the room (``de.buergerchat.handover_answer``):
taken, then the case is ``handed_over``, the citizen is told and the town's
staff leave (or read on); refused, then the case stays. When the partner's bot
leaves a handed-over room, the partner is done and the case closes here too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from mautrix.errors import MatrixRequestError, MForbidden, MNotFound
from mautrix.types import JSON, EventType, Membership, RoomID, StateEvent, UserID

from bridge.appservice import RETRY_ERRORS
from bridge.caserooms import is_remote_citizen
from bridge.clock import utcnow
from bridge.commands import Command
from bridge.db.models import Case
from bridge.errors import BuergerchatError
from bridge.federation import Partner
from bridge.i18n import say, staff_text
from bridge.jobs import GiveUp, JobRun, RetryLater
from bridge.lifecycle import DomainEvent, InvalidTransition, Kind, State
from bridge.plugins import BotContext

log = logging.getLogger("buergerchat.handover")

HANDOVER = EventType.find("de.buergerchat.handover", EventType.Class.STATE)
ANSWER = EventType.find("de.buergerchat.handover_answer", EventType.Class.STATE)
#: The taking side closed its case (its bot stays in the room: a room left is
#: forgotten on its server, and it must still be able to verify its record).
CLOSED = EventType.find("de.buergerchat.handover_closed", EventType.Class.STATE)
INVITE_JOB = "handover.invite"
#: The taking side's work on an invite (bots.handover.partner).
TAKE_JOB = "handover.take"
#: A partner that was invited but has not answered by then: refused.
DEADLINE_JOB = "handover.deadline"
ANSWER_WITHIN = timedelta(minutes=15)
#: A town's staff member who stays to read (after_handover: read_only): below
#: the room's events_default of 0, so they cannot write any more.
READ_ONLY = -1


class NoHandover(BuergerchatError):
    """No hand-over waits for the citizen's answer (409)."""

    errcode = "BC_NO_HANDOVER"


def plain(value: Any) -> dict[str, Any]:
    """Event content as a plain dict (mautrix keeps our own event types as a
    generic object)."""
    serialize = getattr(value, "serialize", None)
    raw = serialize() if callable(serialize) else value
    return dict(raw) if isinstance(raw, dict) else {}


def content_of(event: Any) -> dict[str, Any]:
    return plain(getattr(event, "content", None))


class TownSide:
    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        #: bots.handover.waiting: where the case stands at the partner, shown
        #: once taken; the case back from the partner.
        self.on_taken: Callable[[Case, Partner], Awaitable[None]] | None = None
        self.on_returned: Callable[[Case, Partner, str], Awaitable[None]] | None = None

    # --- asking -------------------------------------------------------------------

    async def latest(
        self, case_id: str, begun: Kind, ended: tuple[Kind, ...]
    ) -> DomainEvent | None:
        """The newest ``begun`` event of the case with no ``ended`` after it."""
        found = None
        for event in await self.ctx.cases.lifecycle.history(case_id):
            if event.kind == begun:
                found = event
            elif event.kind in ended:
                found = None
        return found

    async def open_ask(self, case_id: str) -> DomainEvent | None:
        """The hand-over that waits for the citizen's answer, if any."""
        return await self.latest(
            case_id,
            Kind.HANDOVER_ASKED,
            (Kind.HANDOVER_AGREED, Kind.HANDOVER_DECLINED, Kind.HANDED_OVER),
        )

    async def in_flight(self, case_id: str) -> DomainEvent | None:
        """A hand-over the citizen agreed to that the partner has not answered."""
        return await self.latest(
            case_id, Kind.HANDOVER_AGREED, (Kind.HANDOVER_DECLINED, Kind.HANDED_OVER)
        )

    async def ask(
        self, command: Command, partner: Partner, department: str, note: str
    ) -> None:
        answer = self.ctx.commands.answer
        lifecycle = self.ctx.cases.lifecycle
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        asked = await lifecycle.by_this_cause(case.case_id, Kind.HANDOVER_ASKED)
        if asked is None:
            if case.state != State.LIVE or is_remote_citizen(self.ctx.config, case):
                # A case a partner handed to us: its citizen answers there,
                # so it cannot be asked here; it is not ours to pass on.
                await answer(command, "reply.handover_not_now")
                return
            if await self.in_flight(case.case_id):
                # (A question the citizen has not answered yet is replaced.)
                await answer(command, "reply.handover_pending")
                return
            asked = await lifecycle.record(
                case.case_id,
                Kind.HANDOVER_ASKED,
                actor=command.sender,
                data={
                    "partner": partner.id,
                    "department": department,
                    "note": note or None,
                },
            )
        own = self.ctx.config.department(case.department)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(
                "handover_consent",
                case.language,
                partner=partner.name,
                department=own.name if own else case.department,
            ),
            kind="handover_consent",
            partner=partner.name,
            ask=asked.id,
        )
        name = self.ctx.cases.staff_name(command.event.room_id, command.sender)
        await answer(
            command,
            "reply.handover_asked",
            name=name,
            partner=partner.name,
            department=department,
        )

    # --- the citizen's answer ----------------------------------------------------

    async def consent(
        self, case: Case, agree: bool, ask: int | None = None
    ) -> dict[str, Any]:
        """``POST /api/v1/cases/{case_id}/handover``: the citizen's answer to
        the question ``ask`` (the system event's ``ask``; without it, the
        open one)."""
        asked = await self.open_ask(case.case_id)
        stale = ask is not None and asked is not None and asked.id != ask
        if asked is None or stale or case.closed_at is not None:
            raise NoHandover(
                "Es wartet keine Weitergabe auf Ihre Zustimmung. / No hand-over "
                "is waiting for your answer."
            )
        partner = self.ctx.config.federation.partner(str(asked.data["partner"]))
        lifecycle = self.ctx.cases.lifecycle
        if partner is None or not agree:
            await lifecycle.record(
                case.case_id,
                Kind.HANDOVER_DECLINED,
                actor="citizen",
                data={"by": "citizen", "partner": asked.data["partner"]},
            )
            await self._tell(
                case,
                asked,
                "handover_declined",
                "reply.handover_declined",
                partner=partner.name if partner else str(asked.data["partner"]),
            )
            return {"handover": "declined", "state": case.state}
        agreed = await lifecycle.record(
            case.case_id, Kind.HANDOVER_AGREED, actor="citizen", data=asked.data
        )
        await self._tell(
            case,
            asked,
            "handover_agreed",
            "reply.handover_agreed",
            partner=partner.name,
        )
        await self.ctx.jobs.enqueue(
            INVITE_JOB,
            f"handover:{agreed.id}",
            {"case_id": case.case_id, "event": agreed.id},
            case_id=case.case_id,
        )
        return {"handover": "agreed", "state": case.state}

    async def _tell(
        self, case: Case, asked: DomainEvent, citizen: str, staff: str, **values: str
    ) -> None:
        """The citizen's line and the staff's notice (in the asker's language)."""
        await self.ctx.cases.add_system_event(
            case.case_id,
            say(citizen, case.language, **values),
            kind=citizen,
            key=f"{citizen}:{asked.id}",
        )
        if case.room_id:
            language = self.ctx.commands.language_of(asked.actor or "")
            await self.ctx.commands.reply(
                case.room_id,
                staff_text(staff, language, **values),
                key=f"{staff}:{asked.id}",
            )

    # --- inviting the partner ----------------------------------------------------

    async def invite_job(self, run: JobRun) -> None:
        """Write the hand-over into the room, let the partner's bot act there
        and invite it; retried while Synapse or the partner is away."""
        case = await self.ctx.store.get_case(str(run.payload["case_id"]))
        agreed = await self.ctx.cases.lifecycle.event(int(run.payload["event"]))
        if case is None or agreed is None or case.closed_at is not None:
            raise GiveUp("the case is gone or closed")
        flight = await self.in_flight(case.case_id)
        if flight is None or flight.id != agreed.id:
            log.info("hand-over %s of %s is over; not invited", agreed.id, case)
            return
        partner = self.ctx.config.federation.partner(str(agreed.data["partner"]))
        if partner is None:
            raise GiveUp("the partner is no longer configured")
        if not case.room_id:
            raise RetryLater(timedelta(seconds=10), "the case has no room yet")
        room = RoomID(case.room_id)
        bot = self.ctx.appservice.intent
        note = agreed.data.get("note")
        handover: dict[str, Any] = {
            "department": agreed.data["department"],
            "reference": case.reference,
            "citizen": case.ghost_mxid,
            "citizen_name": case.citizen_name,
            "language": case.language,
            "topic": case.topic,
            "note": note,
            "from": self.ctx.config.town.name,
        }
        await bot.send_state_event(
            room, HANDOVER, cast(JSON, handover), state_key=partner.server_name
        )
        power = await bot.get_power_levels(room)
        power.users[UserID(partner.bot_mxid)] = 50
        # Only our bridge writes hand-overs in this room (staff have 50).
        power.events[HANDOVER] = 100
        await bot.set_power_levels(room, power)
        try:
            await bot.invite_user(room, UserID(partner.bot_mxid))
        except MatrixRequestError as e:
            if "already in the room" not in str(e.message):
                raise
        log.info("case %s: %s invited to take it", case.reference, partner.bot_mxid)
        await self.ctx.jobs.enqueue(
            DEADLINE_JOB,
            f"handover-deadline:{agreed.id}",
            dict(run.payload),
            run_at=utcnow() + ANSWER_WITHIN,
            case_id=case.case_id,
        )

    async def unreachable(self, run: JobRun, error: str) -> None:
        """The partner could not be invited after all attempts: the case stays."""
        case = await self.ctx.store.get_case(str(run.payload["case_id"]))
        agreed = await self.ctx.cases.lifecycle.event(int(run.payload["event"]))
        partner = self.ctx.config.federation.partner(
            str(agreed.data["partner"]) if agreed else ""
        )
        if case is None or partner is None or case.closed_at is not None:
            return
        flight = await self.in_flight(case.case_id)
        if agreed is None or flight is None or flight.id != agreed.id:
            return  # answered meanwhile
        log.warning(
            "hand-over of %s to %s failed: %s", case.reference, partner.id, error
        )
        await self._refused(case, partner, "nicht erreichbar")

    async def deadline_job(self, run: JobRun) -> None:
        """The partner was invited ANSWER_WITHIN ago and has not answered."""
        await self.unreachable(run, "no answer")

    async def withdraw(self, case: Case, partner: Partner) -> None:
        """The partner's bot may no longer act in the room; an invite it has
        not followed yet is taken back (a kick of an invited user)."""
        if not case.room_id:
            return
        room, bot_mxid = RoomID(case.room_id), UserID(partner.bot_mxid)
        bot = self.ctx.appservice.intent
        try:
            power = await bot.get_power_levels(room)
        except (MForbidden, MNotFound):
            return  # the room is gone (erased)
        if power.users.pop(bot_mxid, None) is not None:
            await bot.set_power_levels(room, power)
        members = await bot.get_room_members(
            room, allowed_memberships=(Membership.INVITE, Membership.JOIN)
        )
        if bot_mxid in members:
            try:
                await bot.kick_user(room, bot_mxid, "Weitergabe zurückgenommen")
            except MatrixRequestError as e:
                log.info("could not remove %s from %s: %s", bot_mxid, room, e)

    async def tell_closed(self, case: Case, returned: str | None = None) -> None:
        """We closed a case of a hand-over, on either side: the other side
        closes its case too (CLOSED in the room; nothing to do when the room is
        gone or our bot was put out of it: it is over there too). ``returned``:
        why we give a partner's case back instead (it goes on there)."""
        if not case.room_id:
            return
        content: dict[str, Any] = {"closed": True, "reference": case.reference}
        if returned is not None:
            content |= {"returned": True, "reason": returned}
        try:
            await self.ctx.appservice.intent.send_state_event(
                RoomID(case.room_id),
                CLOSED,
                cast(JSON, content),
                state_key=self.ctx.config.homeserver.server_name,
            )
        except (MForbidden, MNotFound) as e:
            log.info("closing of %s not written into its room: %s", case.reference, e)

    # --- the partner's answer ---------------------------------------------------

    async def on_answer(self, event: StateEvent, partner: Partner) -> None:
        """``de.buergerchat.handover_answer`` from the partner's bot."""
        if event.sender != partner.bot_mxid or event.state_key != partner.server_name:
            return
        case = await self.ctx.store.case_by_room(str(event.room_id))
        if case is None:
            return
        lifecycle = self.ctx.cases.lifecycle
        if await self.in_flight(case.case_id) is None and not any(
            [
                await lifecycle.by_this_cause(case.case_id, Kind.HANDED_OVER),
                await lifecycle.by_this_cause(case.case_id, Kind.HANDOVER_DECLINED),
            ]
        ):
            return  # nothing asked of this partner (or answered before)
        flight = await self.in_flight(case.case_id)
        if flight is not None and flight.data.get("partner") != partner.id:
            return  # another partner than the one asked
        content = content_of(event)
        if content.get("accepted") is True:
            await self._taken(case, partner, content)
        else:
            await self._refused(case, partner, str(content.get("reason") or "–"))

    async def _taken(
        self, case: Case, partner: Partner, content: dict[str, Any]
    ) -> None:
        lifecycle = self.ctx.cases.lifecycle
        if await lifecycle.by_this_cause(case.case_id, Kind.HANDED_OVER) is None:
            try:
                await lifecycle.transition(
                    case.case_id,
                    State.HANDED_OVER,
                    actor=partner.bot_mxid,
                    data={
                        "partner": partner.id,
                        "reference": content.get("reference"),
                        "department": content.get("department"),
                    },
                    expect=frozenset({State.LIVE}),
                )
            except InvalidTransition:
                log.warning("case %s is no longer live; hand-over not recorded", case)
                return
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("handed_over", case.language, partner=partner.name),
            kind="handed_over",
            partner=partner.name,
        )
        assert case.room_id is not None
        read_only = self.ctx.config.federation.after_handover == "read_only"
        await self.ctx.commands.reply(
            case.room_id,
            staff_text(
                "reply.handover_taken_read_only"
                if read_only
                else "reply.handover_taken",
                "de",
                partner=partner.name,
                reference=str(content.get("reference") or "–"),
            ),
        )
        await self._step_back(case, read_only)
        if self.on_taken is not None:
            await self.on_taken(case, partner)

    async def handed_to(self, case_id: str, partner: Partner) -> bool:
        handed = await self.latest(case_id, Kind.HANDED_OVER, ())
        return handed is not None and handed.data.get("partner") == partner.id

    async def _step_back(self, case: Case, read_only: bool) -> None:
        """The town's staff leave the room (invited ones too), or stay without
        a voice; none of them keeps a power level to write."""
        room = RoomID(case.room_id or "")
        bot = self.ctx.appservice.intent
        own = f":{self.ctx.config.homeserver.server_name}"
        members = await bot.get_room_members(
            room, allowed_memberships=(Membership.INVITE, Membership.JOIN)
        )
        power = await bot.get_power_levels(room)
        staff = [
            m
            for m in dict.fromkeys([*members, *power.users])
            if m.endswith(own) and not self.ctx.cases.is_bridge_user(m)
        ]
        for mxid in staff:
            power.users[UserID(mxid)] = READ_ONLY
        await bot.set_power_levels(room, power)
        if read_only:
            return
        for mxid in (m for m in staff if m in members):
            try:
                await bot.kick_user(room, mxid, "An Partnerbehörde übergeben")
            except RETRY_ERRORS:
                raise
            except MatrixRequestError as e:
                log.info("could not remove %s from %s: %s", mxid, room, e)

    async def _refused(self, case: Case, partner: Partner, reason: str) -> None:
        lifecycle = self.ctx.cases.lifecycle
        if await lifecycle.by_this_cause(case.case_id, Kind.HANDOVER_DECLINED) is None:
            await lifecycle.record(
                case.case_id,
                Kind.HANDOVER_DECLINED,
                actor=partner.bot_mxid,
                data={"by": "partner", "partner": partner.id, "reason": reason},
            )
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("handover_refused", case.language, partner=partner.name),
            kind="handover_refused",
            partner=partner.name,
        )
        if case.room_id:
            await self.ctx.commands.reply(
                case.room_id,
                staff_text(
                    "reply.handover_refused", "de", partner=partner.name, reason=reason
                ),
            )
        await self.withdraw(case, partner)

    async def on_partner_done(self, event: StateEvent, partner: Partner) -> None:
        """The partner closed its case (``de.buergerchat.handover_closed``) or
        its bot left the room: the case closes here too."""
        if event.sender != partner.bot_mxid:
            return
        if event.type == CLOSED and event.state_key != partner.server_name:
            return
        case = await self.ctx.store.case_by_room(str(event.room_id))
        if case is None or case.closed_at is not None:
            return
        content = content_of(event) if event.type == CLOSED else {}
        if content.get("returned") is True and self.on_returned is not None:
            await self.on_returned(case, partner, str(content.get("reason") or "–"))
            return
        # Ours, handed over to this partner; or the partner's, handed to us
        # (the handing side closed it: erased, say).
        handed = case.state == State.HANDED_OVER and await self.handed_to(
            case.case_id, partner
        )
        taken = case.ghost_mxid.endswith(f":{partner.server_name}")
        if not (handed or taken):
            return
        await self.ctx.cases.close_case(
            case,
            by=None,
            note=f"von {partner.name} abgeschlossen",
            why=("handover_closed", {"partner": partner.name}),
        )
