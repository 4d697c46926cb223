"""A handed-over citizen waiting in the partner's line, and going back.

The taking side routes a hand-over by its own rules, queue included: when
nobody there is free, the case waits in the department's line like any other.
The citizen's widget is the handing side's, so the taking side writes where the
case stands into the room (``de.buergerchat.handover_status``, its server as
state key): ``queued`` with position and estimated wait, or ``live``. The
handing side shows it in the widget (the same queue box as its own line).

When the taking side's live hours end while the citizen still waits, the case
goes back: it records ``handed_back``, closes its case and writes
``de.buergerchat.handover_closed`` with ``returned: true``. The handing side
then takes the case back into its own line (``handed_over`` → ``queued``,
``handed_back``): its staff may write again and its routing decides as for any
waiting case (someone free, or its own hours ended: the offline offer).

The taking side writes from one job per case (``handover.status``, retried
for ever), enqueued when it takes the case, woken by ``routed``,
``queue_closed`` and ``transferred`` and by a watcher of the timeline's queue
lines, and run again every minute while the case waits: a wake-up lost in a
crash is made up within a minute (and only a change is written). It gives a
case back only once its answer is in the room.
The handing side moves the case in its inbox handler (one transition); what
follows (power levels, the citizen's line, the room, routing) is a durable
reaction to ``handed_back`` (``handover.back``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from mautrix.errors import MatrixRequestError, MForbidden, MNotFound
from mautrix.types import (
    JSON,
    EventType,
    Membership,
    RoomID,
    StateEvent,
    UserID,
)

from bridge.caserooms import is_remote_citizen
from bridge.clock import as_utc, utcnow
from bridge.db.models import Case, CaseEvent
from bridge.federation import Partner
from bridge.i18n import say, staff_text
from bridge.jobs import JobRun, RetryLater
from bridge.lifecycle import DomainEvent, InvalidTransition, Kind, State
from bridge.plugins import BotContext

from .partner import PartnerSide
from .town import ANSWER_WITHIN, TownSide, content_of, plain

log = logging.getLogger("buergerchat.handover")

STATUS = EventType.find("de.buergerchat.handover_status", EventType.Class.STATE)
#: The taking side writes where the case stands (one job per case, again).
STATUS_JOB = "handover.status"
MOVES = (Kind.ROUTED, Kind.QUEUE_CLOSED, Kind.TRANSFERRED)
#: The handing side: a case given back (a reaction to ``handed_back``).
BACK_JOB = "handover.back"
#: While a partner's case waits, where it stands is written again this often.
REFRESH = timedelta(minutes=1)
#: More than any line or wait there is (a partner's event beyond is not shown).
MOST = 10_000
#: What the handing side's staff read when the case comes back.
HOURS_ENDED = "Sprechzeit von {department} zu Ende, bevor jemand frei wurde"
#: A town's staff member's power level in a case room (bridge.case).
STAFF_POWER = 50


def _count(value: Any) -> int | None:
    """A whole number from 0 to MOST from a partner's event, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MOST else None


class Waiting:
    def __init__(self, ctx: BotContext, town: TownSide, partner: PartnerSide) -> None:
        self.ctx = ctx
        self.town = town
        self.partner = partner

    # --- the taking side ------------------------------------------------------------

    async def watch(self, event: CaseEvent) -> None:
        """A queue line in a case's timeline (its place in the line moved)."""
        if event.type == "system" and (event.extra or {}).get("kind") == "queue":
            await self.status_later(event.case_id)

    async def on_moved(self, event: DomainEvent) -> None:
        """One of MOVES (in this process; the minute's rerun makes up for one
        lost in a crash): where the case stands is written anew."""
        await self.status_later(event.case_id)

    async def status_later(self, case_id: str, after: timedelta | None = None) -> None:
        case = await self.ctx.store.get_case(case_id)
        if case is None or not is_remote_citizen(self.ctx.config, case):
            return
        await self.ctx.jobs.enqueue(
            STATUS_JOB,
            f"handover-status:{case_id}",
            {"case_id": case_id},
            run_at=utcnow() + after if after else None,
            case_id=case_id,
            again=True,
        )

    async def status_job(self, run: JobRun) -> None:
        """Write where a partner's case stands (read now, so the last run
        writes the newest); a line closed for the day hands it back."""
        case = await self.ctx.store.get_case(str(run.payload["case_id"]))
        if case is None or case.closed_at is not None or not case.room_id:
            return
        partner = self.ctx.config.federation.of_user(case.ghost_mxid)
        if partner is None:
            return
        if case.state == State.QUEUED and case.queue_closed:
            await self._hand_back(case, partner)
            return
        content: dict[str, Any] = {"state": "live"}
        if case.state == State.QUEUED:
            content = {
                "state": "queued",
                "position": case.queue_position,
                "estimated_wait_minutes": case.queue_wait_minutes,
            }
        room, key = RoomID(case.room_id), self.ctx.config.homeserver.server_name
        bot = self.ctx.appservice.intent
        try:
            current = plain(await bot.get_state_event(room, STATUS, state_key=key))
        except MNotFound:
            current = {}
        except MForbidden:
            return  # put out of the room: nothing to tell any more
        if current != content:
            await bot.send_state_event(room, STATUS, cast(JSON, content), state_key=key)
        if case.state == State.QUEUED:
            await self.status_later(case.case_id, REFRESH)

    async def _hand_back(self, case: Case, partner: Partner) -> None:
        """Our hours ended before anyone was free: record it and close; the
        closing (bots.handover.bot) tells the partner it is theirs again."""
        department = self.ctx.config.department(case.department)
        reason = HOURS_ENDED.format(
            department=department.name if department else case.department
        )
        history = await self.ctx.cases.lifecycle.history(case.case_id)
        if not any(e.kind == Kind.HANDOVER_RECEIVED for e in history):
            # Our answer is not in the room yet (the take job is on it): a
            # "returned" before "accepted" would leave the partner's case
            # handed over to a case closed here. The partner stops waiting
            # for it after ANSWER_WITHIN; so do we, then close quietly.
            if utcnow() - as_utc(case.created_at) < ANSWER_WITHIN:
                raise RetryLater(timedelta(seconds=10), "not answered yet")
            await self.ctx.cases.close_case(case, by=None, note="nie beantwortet")
            return
        if not any(e.kind == Kind.HANDED_BACK for e in history):
            try:
                await self.ctx.cases.lifecycle.transition(
                    case.case_id,
                    State.QUEUED,
                    kind=Kind.HANDED_BACK,
                    data={"to": partner.id, "reason": reason},
                    expect=frozenset({State.QUEUED}),
                )
            except InvalidTransition:
                return  # routed or closed meanwhile
        await self.ctx.cases.close_case(
            case, by=None, note=f"an {partner.name} zurückgegeben: {reason}"
        )
        log.info("case %s handed back to %s: %s", case.reference, partner.id, reason)

    # --- the handing side -------------------------------------------------------------

    async def on_status(self, event: StateEvent, partner: Partner) -> None:
        """``de.buergerchat.handover_status`` from the partner's bot."""
        if event.sender != partner.bot_mxid or event.state_key != partner.server_name:
            return
        case = await self.ctx.store.case_by_room(str(event.room_id))
        if case is None or case.state != State.HANDED_OVER:
            return
        if await self.town.handed_to(case.case_id, partner):
            await self.show(case, partner, content_of(event))

    async def show_current(self, case: Case, partner: Partner) -> None:
        """Just handed over: where the case stands there, if it was written
        before the partner's answer reached us."""
        assert case.room_id is not None
        content = await self.partner.written_by(RoomID(case.room_id), STATUS, partner)
        if content:
            fresh = await self.ctx.store.get_case(case.case_id) or case
            await self.show(fresh, partner, content)

    async def show(self, case: Case, partner: Partner, content: dict[str, Any]) -> None:
        """The citizen's queue box (the case's queue columns and a timeline
        line, as in our own line); once someone there takes it, gone again."""
        cases = self.ctx.cases
        if content.get("state") == "queued":
            position = _count(content.get("position"))
            minutes = _count(content.get("estimated_wait_minutes")) or 0
            if position is None or (case.queue_position, case.queue_wait_minutes) == (
                position,
                minutes,
            ):
                return
            await self.ctx.store.update_case(
                case.case_id, queue_position=position, queue_wait_minutes=minutes
            )
            await cases.add_system_event(
                case.case_id,
                say("queue", case.language, position=position, minutes=minutes),
                kind="queue",
                position=position,
                estimated_wait_minutes=minutes,
            )
        elif content.get("state") == "live" and case.queue_position is not None:
            await self.ctx.store.update_case(
                case.case_id, queue_position=None, queue_wait_minutes=None
            )
            await cases.add_system_event(
                case.case_id,
                say("routed", case.language, department=partner.name),
                kind="routed",
                partner=partner.name,
            )

    async def handed_back(self, case: Case, partner: Partner, reason: str) -> None:
        """The partner gave the case back (``returned`` in its closing): into
        our line, in one transition; the rest is BACK_JOB, its reaction."""
        if case.state != State.HANDED_OVER:
            return  # (a replay: moved before)
        if not await self.town.handed_to(case.case_id, partner):
            return
        try:
            await self.ctx.cases.lifecycle.transition(
                case.case_id,
                State.QUEUED,
                kind=Kind.HANDED_BACK,
                actor=partner.bot_mxid,
                data={"partner": partner.id, "reason": reason},
                expect=frozenset({State.HANDED_OVER}),
                queue_position=None,
                queue_wait_minutes=None,
                queue_closed=False,
                assignee=None,
                invited=[],
            )
        except InvalidTransition:
            return
        log.info("case %s back from %s: %s", case.reference, partner.id, reason)

    async def back_job(self, run: JobRun) -> None:
        """Kind.HANDED_BACK here: our staff may write again, the partner's
        people leave, the citizen and the room are told, routing decides;
        each step again when the job runs again."""
        lifecycle = self.ctx.cases.lifecycle
        event = await lifecycle.event(int(run.payload["event"]))
        case = await self.ctx.store.get_case(event.case_id) if event else None
        if event is None or case is None or not case.room_id:
            return
        partner = self.ctx.config.federation.partner(str(event.data.get("partner")))
        if partner is None or is_remote_citizen(self.ctx.config, case):
            return  # (the taking side records handed_back too)
        handed = await self.town.latest(case.case_id, Kind.HANDED_OVER, ())
        if (handed and (handed.id or 0) > (event.id or 0)) or case.closed_at:
            return  # (a late rerun: handed over again, or closed, since)
        await self._voice_back(case, partner)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("handed_back", case.language, partner=partner.name),
            kind="handed_back",
            key=f"handed_back:{event.id}",
            partner=partner.name,
        )
        await self.ctx.commands.reply(
            case.room_id,
            staff_text(
                "reply.handover_back",
                "de",
                partner=partner.name,
                reason=str(event.data.get("reason") or "–"),
            ),
            key=f"handover_back:{event.id}",
        )
        await self._bring_staff(case)

    async def _voice_back(self, case: Case, partner: Partner) -> None:
        """Our staff may write again (they were put below the room's default
        at the hand-over); the partner's bot no longer acts here (it stays a
        member, so its server keeps the room it must be able to verify); the
        partner's staff leave (they would read on)."""
        room = RoomID(case.room_id or "")
        bot = self.ctx.appservice.intent
        try:
            power = await bot.get_power_levels(room)
        except (MForbidden, MNotFound):
            return
        department = self.ctx.config.department(case.department)
        own = f":{self.ctx.config.homeserver.server_name}"
        staff = {s.mxid for s in department.staff} if department else set()
        for user, level in list(power.users.items()):
            if user.endswith(own) and level < 0:
                staff.add(str(user))
        for mxid in staff:
            power.users[UserID(mxid)] = STAFF_POWER
        power.users.pop(UserID(partner.bot_mxid), None)
        await bot.set_power_levels(room, power)
        members = await bot.get_room_members(
            room, allowed_memberships=(Membership.INVITE, Membership.JOIN)
        )
        theirs = f":{partner.server_name}"
        for mxid in members:
            if mxid != partner.bot_mxid and mxid.endswith(theirs):
                try:
                    await bot.kick_user(room, mxid, "Zurück bei der Stadt")
                except MatrixRequestError as e:
                    log.info("could not remove %s from %s: %s", mxid, room, e)

    async def _bring_staff(self, case: Case) -> None:
        """Routing picks someone free (or its line, or its closed hours say
        so); without the routing bot the department is invited at once."""
        router = self.ctx.cases.router
        if router is not None:
            await router.drain()
            return
        fresh = await self.ctx.store.get_case(case.case_id) or case
        department = self.ctx.config.department(fresh.department)
        staff = [s.mxid for s in department.staff] if department else []
        if fresh.state == State.QUEUED:
            try:
                await self.ctx.cases.lifecycle.transition(
                    fresh.case_id,
                    State.LIVE,
                    expect=frozenset({State.QUEUED}),
                    data={"department": fresh.department, "invited": staff},
                    invited=staff,
                    routed_at=utcnow(),
                )
            except InvalidTransition:
                return
        for mxid in staff:
            try:
                await self.ctx.appservice.intent.invite_user(
                    RoomID(case.room_id or ""), UserID(mxid)
                )
            except MatrixRequestError as e:  # already in the room, say
                log.info("could not invite %s back to %s: %s", mxid, case, e)
