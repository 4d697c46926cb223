"""Staff commands in case rooms (``!video``, ``!close`` …): parsing, the staff
check, and the bot's answers as notices."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mautrix.types import MessageEvent, MessageType

from .case import CaseService
from .config import Config
from .db.models import Case
from .lifecycle import DomainEvent, Kind

log = logging.getLogger("buergerchat.commands")


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    case: Case
    sender: str
    event: MessageEvent


Handler = Callable[[Command], Awaitable[None]]


@dataclass(frozen=True)
class _Entry:
    handler: Handler
    usage: str
    help: str


class CommandRouter:
    def __init__(self, config: Config, cases: CaseService) -> None:
        self.config = config
        self.cases = cases
        self._commands: dict[str, _Entry] = {}
        self.register("help", self._help, "!help", "zeigt diese Liste")
        cases.lifecycle.subscribe(Kind.STAFF_COMMAND, self._on_command)

    def register(self, name: str, handler: Handler, usage: str, help: str) -> None:
        self._commands[name] = _Entry(handler, usage, help)

    def is_staff(self, mxid: str) -> bool:
        return mxid in self.config.all_staff()

    async def _on_command(self, published: DomainEvent) -> None:
        """Kind.STAFF_COMMAND: a ``!`` text of someone (not the bridge) in a case
        room, with its case (bridge.caserooms)."""
        event: MessageEvent = published.data["event"]
        case = published.case
        assert case is not None
        name, _, args = event.content.body[1:].strip().partition(" ")
        name = name.lower()
        if not self.is_staff(event.sender):
            await self.reply(
                event.room_id,
                f"!{name} ist nur für Mitarbeitende der Verwaltung. "
                "Bitte wenden Sie sich an die Administration, wenn Sie dazugehören.",
            )
            return
        entry = self._commands.get(name)
        if entry is None:
            await self.reply(
                event.room_id, f"Unbekannter Befehl !{name}. " + self.help_text()
            )
            return
        await entry.handler(Command(name, args.strip(), case, event.sender, event))

    def help_text(self) -> str:
        lines = [f"{e.usage} – {e.help}" for e in self._commands.values()]
        return "Befehle in diesem Raum:\n" + "\n".join(sorted(lines))

    async def _help(self, command: Command) -> None:
        await self.reply(command.event.room_id, self.help_text())

    async def reply(
        self, room_id: str, text: str, *, key: str | None = None
    ) -> str | None:
        """A notice from the bot, sent once (durably, see bridge.delivery); its
        key comes from the command's event unless given."""
        content = {"msgtype": MessageType.NOTICE.value, "body": text}
        return await self.cases.deliveries.send(room_id, content, key=key, kind="reply")
