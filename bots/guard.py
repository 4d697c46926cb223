"""``!block [Grund]`` and ``!unblock`` in a case room: an admin stops an address
that floods the town (its chats, offline messages and files) and ends the case,
with the reason recorded; the block runs out after ``limits.block_hours``.

Who may: the ``routing.admins``; with no admins configured, the staff of the
rules. The citizen of the blocked case reads that the chat ended; new chats from
the address are refused with ``403 BC_BLOCKED`` (README "Abuse protection").
"""

from __future__ import annotations

import logging
from typing import ClassVar

from bridge.clock import as_utc
from bridge.commands import Command
from bridge.i18n import staff_text
from bridge.plugins import BotContext
from bridge.tokens import RESUME

log = logging.getLogger("buergerchat.guard")


class GuardBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 70
    name = "guard"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        for name, handler in (("block", self._block), ("unblock", self._unblock)):
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

    def _may(self, mxid: str) -> bool:
        admins = self.ctx.config.routing.admins
        return mxid in admins if admins else mxid in self.ctx.config.all_staff()

    async def _refused(self, command: Command) -> bool:
        if self._may(command.sender) and self.ctx.limits.blocks is not None:
            return False
        await self.ctx.commands.answer(command, "reply.block_admins_only")
        return True

    async def _block(self, command: Command) -> None:
        if await self._refused(command):
            return
        blocks = self.ctx.limits.blocks
        assert blocks is not None
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        # The record keeps the reason in German; the answer is in the sender's.
        language = self.ctx.commands.language_of(command.sender)
        given = command.args.strip()
        reason = given or staff_text("reply.no_reason", "de")
        block = await blocks.block(case, reason=reason, actor=command.sender)
        # The case ends (the citizen reads so; staff leave the room) and its
        # personal links from mails stop working.
        await self.ctx.cases.tokens.revoke(case.case_id, RESUME)
        # Who blocked stays in the closed room: to read this answer, and to
        # !unblock there if it was a mistake.
        await self.ctx.cases.close_case(case, by=command.sender, keep=(command.sender,))
        until = as_utc(block.expires_at).astimezone(self.ctx.config.routing.zone)
        log.warning(
            "case %s blocked by %s until %s: %s",
            case.reference,
            command.sender,
            until.isoformat(),
            reason,
        )
        await self.ctx.commands.answer(
            command,
            "reply.blocked_address" if case.client_key else "reply.blocked_case",
            until=until.strftime(staff_text("format.datetime", language)),
            reason=given or staff_text("reply.no_reason", language),
        )

    async def _unblock(self, command: Command) -> None:
        if await self._refused(command):
            return
        blocks = self.ctx.limits.blocks
        assert blocks is not None
        case = await self.ctx.store.get_case(command.case.case_id) or command.case
        lifted = await blocks.lift(case)
        await self.ctx.commands.answer(
            command, "reply.unblocked" if lifted else "reply.not_blocked"
        )
