"""Staff commands in case rooms (``!video``, ``!close`` …): parsing, the staff
check, and the bot's answers as notices.

An answer is in the language of the staff member who sent the command
(``language:`` in departments.yaml; German for anyone the rules do not list), from
the ``staff`` catalogue (bridge.i18n). So is ``!help``: each command's usage and
description are ``usage.<name>`` and ``help.<name>`` there, the German text given
to :meth:`CommandRouter.register` where a language lacks them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mautrix.types import MessageEvent, MessageType

from .case import CaseService
from .config import Config
from .db.models import Case
from .i18n import SOURCE, STAFF_DOMAIN, catalogue, staff_text
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
        self.register(
            "help",
            self._help,
            staff_text("usage.help", SOURCE),
            staff_text("help.help", SOURCE),
        )
        cases.lifecycle.subscribe(Kind.STAFF_COMMAND, self._on_command)

    def register(self, name: str, handler: Handler, usage: str, help: str) -> None:
        """``usage`` and ``help`` in German; other languages from the catalogue's
        ``usage.<name>`` and ``help.<name>``."""
        self._commands[name] = _Entry(handler, usage, help)

    def handler(self, name: str) -> Handler | None:
        """The handler registered for ``name`` (a later bot may wrap it)."""
        entry = self._commands.get(name)
        return entry.handler if entry is not None else None

    def is_staff(self, mxid: str) -> bool:
        return mxid in self.config.all_staff()

    def language_of(self, mxid: str) -> str:
        """What this person reads the bots' answers in: their ``language:``,
        German for anyone departments.yaml does not list (e.g. an admin)."""
        staff = self.config.all_staff().get(mxid)
        return staff.language if staff is not None else SOURCE

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
                event.room_id, staff_text("command.staff_only", SOURCE, name=name)
            )
            return
        entry = self._commands.get(name)
        if entry is None:
            language = self.language_of(event.sender)
            await self.reply(
                event.room_id,
                staff_text(
                    "command.unknown",
                    language,
                    name=name,
                    help=self.help_text(language),
                ),
            )
            return
        await entry.handler(Command(name, args.strip(), case, event.sender, event))

    def _described(self, name: str, entry: _Entry, language: str) -> tuple[str, str]:
        """Usage and description of one command in ``language``."""
        if language == SOURCE:
            return entry.usage, entry.help
        own = catalogue(language, STAFF_DOMAIN)
        usage = own.get(f"usage.{name}", entry.usage)
        return usage, own.get(f"help.{name}", entry.help)

    def help_text(self, language: str = SOURCE) -> str:
        lines = [
            "{} – {}".format(*self._described(name, entry, language))
            for name, entry in self._commands.items()
        ]
        return staff_text("help.title", language) + "\n" + "\n".join(sorted(lines))

    async def _help(self, command: Command) -> None:
        await self.reply(
            command.event.room_id, self.help_text(self.language_of(command.sender))
        )

    async def answer(self, command: Command, key: str, /, **values: Any) -> str | None:
        """The answer ``key`` (staff catalogue) to ``command``, in its sender's
        language."""
        text = staff_text(key, self.language_of(command.sender), **values)
        return await self.reply(command.event.room_id, text)

    async def reply(
        self, room_id: str, text: str, *, key: str | None = None
    ) -> str | None:
        """A notice from the bot, sent once (durably, see bridge.delivery); its
        key comes from the command's event unless given."""
        content = {"msgtype": MessageType.NOTICE.value, "body": text}
        return await self.cases.deliveries.send(room_id, content, key=key, kind="reply")
