"""``!erase`` in a case room: an admin erases the case at once (an erasure
request that reached the town another way, Art. 17 DSGVO). The first ``!erase``
says what goes; ``!erase <reference>`` confirms. Who may: the ``routing.admins``;
with no admins configured, the staff of the rules (as ``!block``)."""

from __future__ import annotations

from ..commands import Command, CommandRouter
from .service import ERASED, Privacy


def register_erase_command(commands: CommandRouter, privacy: Privacy) -> None:
    async def erase(command: Command) -> None:
        config = commands.config
        admins = config.routing.admins
        room = command.event.room_id
        if command.sender not in (admins or config.all_staff()):
            await commands.reply(
                room, "Löschen dürfen nur die Admins (routing.admins)."
            )
            return
        case = command.case
        if command.args.strip().upper() != case.reference.upper():
            await commands.reply(
                room,
                f"!erase löscht den Fall {case.reference} vollständig und sofort: "
                "diesen Raum mit allen Nachrichten und Dateien, das Protokoll, die "
                "Angaben und E-Mails der Person. Das lässt sich nicht rückgängig "
                f"machen. Zum Bestätigen: !erase {case.reference}",
            )
            return
        await commands.reply(
            room,
            f"Fall {case.reference} wird gelöscht; dieser Raum verschwindet gleich. "
            "Das Löschprotokoll nennt nur Aktenzeichen, Zeit und Umfang.",
        )
        await privacy.enqueue_purge(case.case_id, ERASED, command.sender)

    commands.register(
        "erase",
        erase,
        "!erase [Aktenzeichen]",
        "Fall mit allen Daten löschen (Admins; mit Aktenzeichen bestätigen)",
    )
