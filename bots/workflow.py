"""The staff workflow in a case room: ``!claim``, ``!transfer``, ``!close``.

A transfer is routed like a new case of the target department: its strategy picks
whom to invite (everyone there when nobody is free right now) and its team room
gets a notice."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import ClassVar

from mautrix.errors import MatrixError
from mautrix.types import EventType, RoomID, RoomNameStateEventContent, UserID

from bridge.appservice import RETRY_ERRORS
from bridge.clock import utcnow
from bridge.commands import Command
from bridge.config import Department
from bridge.db.models import Case
from bridge.i18n import say, staff_line, staff_text
from bridge.lifecycle import DomainEvent, InvalidTransition, Kind, State
from bridge.plugins import BotContext, Router

log = logging.getLogger("buergerchat.workflow")


class WorkflowBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 10
    name = "workflow"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        for name, handler in (
            ("claim", self._claim),
            ("transfer", self._transfer),
            ("close", self._close),
            ("goodbye", self._goodbye),
        ):
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

    def _department_label(self, department_id: str) -> str:
        department = self.ctx.config.department(department_id)
        return department.name if department else department_id

    async def _claim(self, command: Command) -> None:
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        room_id = command.event.room_id
        answer = self.ctx.commands.answer
        name = self.ctx.cases.staff_name(room_id, command.sender)
        if case.assignee and case.assignee != command.sender:
            other = self.ctx.cases.staff_name(room_id, case.assignee)
            await answer(command, "reply.claimed_by_other", name=other)
            return
        lifecycle = self.ctx.cases.lifecycle
        if case.assignee == command.sender:
            if await lifecycle.by_this_cause(case.case_id, Kind.CLAIMED) is None:
                await answer(command, "reply.already_yours")
                return
            # else: this very !claim, worked off again; finish what it says.
        else:
            try:
                await lifecycle.record(
                    case.case_id,
                    Kind.CLAIMED,
                    actor=command.sender,
                    assignee=command.sender,
                )
            except InvalidTransition:
                await answer(command, "reply.case_closed")
                return
        department = self._department_label(case.department)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("claimed", case.language, name=name, department=department),
            kind="claimed",
            staff_name=name,
        )
        await answer(command, "reply.claimed", name=name)
        if self.ctx.cases.router is not None:
            # Others invited to this case count it no more: they may be free now.
            await self.ctx.cases.router.drain()

    async def _transfer(self, command: Command) -> None:
        found = await self._transfer_target(command)
        if found is None:
            return
        case, target, note, moved = found
        router = self.ctx.cases.router
        if moved is None:
            source = self._department_label(case.department)
            invite = await self._move_case(router, command, case, target, note)
        else:  # this very !transfer, worked off again past the move
            source = self._department_label(str(moved.data.get("from")))
            invite = tuple(case.invited or ())
        await self._open_room_to(command.event.room_id, case, target, invite)
        await self._tell_of_transfer(command, case, target, note, source, invite)
        if router is not None:
            await router.drain()  # the old department has a place free again

    async def _transfer_target(
        self, command: Command
    ) -> tuple[Case, Department, str, DomainEvent | None] | None:
        """The case, the department and the note of ``!transfer <abteilung> [notiz]``,
        and the move if this very command made it before (worked off again); None
        once staff were told why not (unknown department, or already there)."""
        answer = self.ctx.commands.answer
        target_id, _, note = command.args.partition(" ")
        target = self.ctx.config.department(target_id.strip().lower())
        if target is None:
            known = ", ".join(d.id for d in self.ctx.config.departments)
            await answer(
                command, "reply.unknown_department", department=target_id, known=known
            )
            return None
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        if case.state == State.HANDED_OVER:
            # The partner's now (bots/handover): it gives it back, or closes.
            await answer(command, "reply.transfer_handed_over")
            return None
        if case.state in (State.BOOKED, State.WAITING, State.IN_CALL):
            # A video appointment belongs to its person's time until its
            # call has ended (bots/booking); then it is a chat like others.
            await answer(command, "reply.transfer_not_now")
            return None
        if target.id == case.department:
            moved = await self.ctx.cases.lifecycle.by_this_cause(
                case.case_id, Kind.TRANSFERRED
            )
            if moved is None:
                await answer(command, "reply.already_there", department=target.name)
                return None
            return case, target, note, moved
        return case, target, note, None

    async def _move_case(
        self,
        router: Router | None,
        command: Command,
        case: Case,
        target: Department,
        note: str,
    ) -> tuple[str, ...]:
        """Hand the case to ``target``; returns whom to invite there."""
        if router is not None:
            return await router.transfer(
                case, target, actor=command.sender, note=note or None
            )
        await self.ctx.cases.lifecycle.transition(
            case.case_id,
            State.LIVE,
            kind=Kind.TRANSFERRED,
            actor=command.sender,
            data={"from": case.department, "to": target.id, "note": note or None},
            department=target.id,
            assignee=None,
        )
        return tuple(s.mxid for s in target.staff)

    async def _open_room_to(
        self, room_id: RoomID, case: Case, target: Department, invite: tuple[str, ...]
    ) -> None:
        """Make the target's staff moderators, invite them, and rename the room."""
        bot = self.ctx.appservice.intent
        power = await bot.get_power_levels(room_id)
        for staff in target.staff:
            user = UserID(staff.mxid)
            power.users[user] = max(power.users.get(user, 0), 50)
        await bot.set_power_levels(room_id, power)
        for mxid in invite:
            try:
                await bot.invite_user(room_id, UserID(mxid))
            except MatrixError as e:
                log.info("could not invite %s to %s: %s", mxid, room_id, e)
        await bot.send_state_event(
            room_id,
            EventType.ROOM_NAME,
            RoomNameStateEventContent(name=f"{case.reference} · {target.name}"),
        )

    async def _tell_of_transfer(
        self,
        command: Command,
        case: Case,
        target: Department,
        note: str,
        source: str,
        invite: tuple[str, ...],
    ) -> None:
        """Tell the citizen, the staff in the room and the target's team room."""
        room_id = command.event.room_id
        name = self.ctx.cases.staff_name(room_id, command.sender)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("transferred", case.language, department=target.name),
            kind="transferred",
            department=target.id,
        )
        told = "transferred_note" if note else "transferred"
        await self.ctx.commands.answer(
            command, f"reply.{told}", name=name, department=target.name, note=note
        )
        invited = ", ".join(self.ctx.cases.staff_name(room_id, m) for m in invite)
        # Synapse away while the team room is looked up: the inbox works the
        # command off again (every step before is idempotent), so the new
        # department is not left without its notice.
        announced = await self.ctx.team.announce_case(
            case,
            first_message=await self.ctx.store.first_citizen_message(case.case_id),
            extra=staff_line(
                f"team.{told}",
                name=name,
                source=source,
                note=note,
                invited=invited,
            ),
            propagate=RETRY_ERRORS,
        )
        if announced and case.announced_at is None:
            # The team knows of the case now: no second, plain notice later.
            await self.ctx.store.update_case(case.case_id, announced_at=utcnow())

    async def _close(self, command: Command) -> None:
        room_id = command.event.room_id
        name = self.ctx.cases.staff_name(room_id, command.sender)
        await self.ctx.commands.answer(command, "reply.closing", name=name)
        closed = await self.ctx.cases.close_case(
            command.case, by=command.sender, note=command.args or None
        )
        if not closed:
            await self.ctx.commands.answer(command, "reply.already_closed")

    async def _goodbye(self, command: Command) -> None:
        """``!goodbye <nachricht>``: the message to the citizen, then the close.
        Its key is the command's event: worked off twice, it is said once."""
        text = command.args.strip()
        if not text:
            await self.ctx.commands.answer(command, "reply.goodbye_needs_text")
            return
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        lifecycle = self.ctx.cases.lifecycle
        if (
            case.closed_at is not None
            and await lifecycle.by_this_cause(case.case_id, Kind.CLOSED) is None
        ):
            await self.ctx.commands.answer(command, "reply.already_closed")
            return
        await self.ctx.cases.say_to_citizen(case, command.event, text)
        await self._close(replace(command, args=""))
