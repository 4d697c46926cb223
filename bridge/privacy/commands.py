"""``!erase`` in a case room: an admin erases the case at once (an erasure
request that reached the town another way, Art. 17 DSGVO). The first ``!erase``
says what goes; ``!erase <reference>`` confirms. Who may: the ``routing.admins``;
with no admins configured, the staff of the rules (as ``!block``)."""

from __future__ import annotations

from ..commands import Command, CommandRouter
from ..i18n import SOURCE, staff_text
from .service import ERASED, Privacy


def register_erase_command(commands: CommandRouter, privacy: Privacy) -> None:
    async def erase(command: Command) -> None:
        config = commands.config
        admins = config.routing.admins
        if command.sender not in (admins or config.all_staff()):
            await commands.answer(command, "reply.erase_admins_only")
            return
        case = command.case
        if command.args.strip().upper() != case.reference.upper():
            await commands.answer(
                command, "reply.erase_confirm", reference=case.reference
            )
            return
        await commands.answer(command, "reply.erasing", reference=case.reference)
        await privacy.enqueue_purge(case.case_id, ERASED, command.sender)

    commands.register(
        "erase",
        erase,
        staff_text("usage.erase", SOURCE),
        staff_text("help.erase", SOURCE),
    )
