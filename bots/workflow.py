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

from bridge.commands import Command
from bridge.config import Department
from bridge.db.models import Case
from bridge.lifecycle import InvalidTransition, Kind, State
from bridge.messages import say
from bridge.plugins import BotContext, Router

log = logging.getLogger("buergerchat.workflow")


class WorkflowBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 10
    name = "workflow"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        register = ctx.commands.register
        register("claim", self._claim, "!claim", "den Fall übernehmen")
        register(
            "transfer",
            self._transfer,
            "!transfer <abteilung> [notiz]",
            "an eine andere Abteilung weitergeben (die Notiz bleibt intern)",
        )
        register(
            "close",
            self._close,
            "!close [notiz]",
            "den Fall abschließen (die Notiz bleibt intern: Raum, Teamraum, "
            "Archiv-PDF; nie bei Bürger*in)",
        )
        register(
            "goodbye",
            self._goodbye,
            "!goodbye <nachricht>",
            "den Fall abschließen und Bürger*in diese Nachricht zum Abschluss "
            "schreiben (sie steht in Chat und PDF)",
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
        name = self.ctx.cases.staff_name(room_id, command.sender)
        if case.assignee and case.assignee != command.sender:
            other = self.ctx.cases.staff_name(room_id, case.assignee)
            await self.ctx.commands.reply(room_id, f"Der Fall ist bereits bei {other}.")
            return
        if case.assignee == command.sender:
            await self.ctx.commands.reply(
                room_id, "Sie haben den Fall bereits übernommen."
            )
            return
        try:
            await self.ctx.cases.lifecycle.record(
                case.case_id,
                Kind.CLAIMED,
                actor=command.sender,
                assignee=command.sender,
            )
        except InvalidTransition:
            await self.ctx.commands.reply(room_id, "Der Fall ist abgeschlossen.")
            return
        department = self._department_label(case.department)
        await self.ctx.cases.add_system_event(
            case.case_id,
            say("claimed", case.language, name=name, department=department),
            kind="claimed",
            staff_name=name,
        )
        await self.ctx.commands.reply(room_id, f"{name} hat den Fall übernommen.")
        if self.ctx.cases.router is not None:
            # Others invited to this case count it no more: they may be free now.
            await self.ctx.cases.router.drain()

    async def _transfer(self, command: Command) -> None:
        found = await self._transfer_target(command)
        if found is None:
            return
        case, target, note = found
        router = self.ctx.cases.router
        source = self._department_label(case.department)
        invite = await self._move_case(router, command, case, target, note)
        await self._open_room_to(command.event.room_id, case, target, invite)
        await self._tell_of_transfer(command, case, target, note, source, invite)
        if router is not None:
            await router.drain()  # the old department has a place free again

    async def _transfer_target(
        self, command: Command
    ) -> tuple[Case, Department, str] | None:
        """The case, the department and the note of ``!transfer <abteilung> [notiz]``;
        None once staff were told why not (unknown department, or already there)."""
        room_id = command.event.room_id
        target_id, _, note = command.args.partition(" ")
        target = self.ctx.config.department(target_id.strip().lower())
        if target is None:
            known = ", ".join(d.id for d in self.ctx.config.departments)
            await self.ctx.commands.reply(
                room_id, f"Unbekannte Abteilung '{target_id}'. Möglich: {known}."
            )
            return None
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        if target.id == case.department:
            await self.ctx.commands.reply(
                room_id, f"Der Fall ist schon bei {target.name}."
            )
            return None
        return case, target, note

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
        text = f"{name} hat den Fall an {target.name} weitergegeben."
        await self.ctx.commands.reply(
            room_id, text + (f" Notiz: {note}" if note else "")
        )
        invited = ", ".join(self.ctx.cases.staff_name(room_id, m) for m in invite)
        await self.ctx.team.announce_case(
            case,
            first_message=await self.ctx.store.first_citizen_message(case.case_id),
            extra=f"Weitergegeben von {name} ({source})"
            + (f", Notiz: {note}" if note else "")
            + f". Eingeladen: {invited}",
        )

    async def _close(self, command: Command) -> None:
        room_id = command.event.room_id
        name = self.ctx.cases.staff_name(room_id, command.sender)
        await self.ctx.commands.reply(
            room_id, f"{name} schließt den Fall. Der Raum wird aufgeräumt."
        )
        closed = await self.ctx.cases.close_case(
            command.case, by=command.sender, note=command.args or None
        )
        if not closed:
            await self.ctx.commands.reply(room_id, "Der Fall ist bereits geschlossen.")

    async def _goodbye(self, command: Command) -> None:
        """``!goodbye <nachricht>``: the message to the citizen, then the close.
        Its key is the command's event: worked off twice, it is said once."""
        room_id = command.event.room_id
        text = command.args.strip()
        if not text:
            await self.ctx.commands.reply(
                room_id,
                "Bitte die Nachricht an Bürger*in angeben: !goodbye <nachricht> "
                "(ohne Nachricht: !close).",
            )
            return
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        if case.closed_at is not None:
            await self.ctx.commands.reply(room_id, "Der Fall ist bereits geschlossen.")
            return
        await self.ctx.cases.say_to_citizen(case, command.event, text)
        await self._close(replace(command, args=""))
