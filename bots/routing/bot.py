"""The routing bot: decides at case open (through :class:`Dispatcher`, which the
citizen API reaches as ``cases.router``) and keeps things moving every few seconds:
reloads ``departments.yaml``, routes waiting citizens when someone is free, ends
queues when live hours end, announces cases nobody wrote in yet, and closes
inactive cases."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import ClassVar

from mautrix.types import MessageType

from bridge.clock import as_utc, utcnow
from bridge.i18n import for_readers, staff_line
from bridge.jobs import JobRun
from bridge.lifecycle import Kind
from bridge.plugins import BotContext
from bridge.tasks import cancel, every

from .dispatcher import Dispatcher
from .queue import is_inactive
from .reload import RulesWatcher

log = logging.getLogger("buergerchat.routing")

TICK_SECONDS = 2.0
#: The shared upkeep (queues, notices, inactivity) is one recurring job, so that
#: with several bridge processes one of them does it each time.
TICK_JOB = "routing.tick"
#: A case nobody wrote in yet is announced without a first message after this.
ANNOUNCE_WITHOUT_MESSAGE = timedelta(seconds=60)


class RoutingBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 60
    name = "routing"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.dispatcher = Dispatcher(ctx.config, ctx.store, ctx.cases, ctx.team)
        self.watcher = RulesWatcher(ctx.config)
        ctx.cases.router = self.dispatcher
        ctx.cases.lifecycle.subscribe(Kind.CLOSED, self.dispatcher.on_close)
        ctx.cases.lifecycle.subscribe(
            Kind.CITIZEN_MESSAGE, self.dispatcher.on_citizen_message
        )
        ctx.jobs.kind(
            TICK_JOB,
            self._tick_job,
            every=timedelta(seconds=TICK_SECONDS),
            lease=timedelta(seconds=20),
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.watcher.baseline()
        await self.dispatcher.load()
        # Each process reads departments.yaml itself; the upkeep is shared.
        self._task = every(TICK_SECONDS, self.reload, name="routing-reload", log=log)
        await self.ctx.jobs.enqueue(TICK_JOB, TICK_JOB)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _tick_job(self, run: JobRun) -> None:
        await self.tick()

    async def tick(self) -> None:
        for step in (
            self.dispatcher.drain,
            self.announce_silent,
            self.close_inactive,
        ):
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing step %s failed", step.__name__)

    # --- reload -----------------------------------------------------------------

    async def reload(self) -> None:
        rules, problems = await self.watcher.check()
        if problems:
            await self.ctx.team.alert_admins(
                f"{self.watcher.path.name} wurde geändert, ist aber fehlerhaft und "
                "wurde NICHT übernommen; es gelten weiter die letzten gültigen Regeln. "
                f"{len(problems)} Problem(e):\n" + "\n".join(problems)
            )
        if rules is not None:
            await self.ctx.team.ensure_rooms()

    # --- upkeep -----------------------------------------------------------------

    async def announce_silent(self) -> None:
        """Cases whose citizen has not written for a while still get their notice."""
        cutoff = utcnow() - ANNOUNCE_WITHOUT_MESSAGE
        for case in await self.ctx.store.unannounced_cases(cutoff):
            await self.dispatcher.announce_once(case, None)

    async def close_inactive(self) -> None:
        minutes = self.ctx.config.routing.inactivity_close_minutes
        if minutes <= 0:
            return
        now = utcnow()
        last = await self.ctx.store.last_message_times()
        moved = await self.ctx.store.last_move_times()
        for case in await self.ctx.store.routed_cases():
            if case.state not in ("live", "queued"):
                continue  # a video call: it ends with !video end, not by silence
            activity = as_utc(case.created_at)
            for known in (last, moved):  # a message, or a video call ending
                if case.case_id in known:
                    activity = max(activity, as_utc(known[case.case_id]))
            if not is_inactive(activity, now, minutes):
                continue
            shown = f"{minutes:g}"
            note = f"nach {shown} Minuten ohne Nachricht automatisch beendet"
            if case.room_id:
                body = for_readers(
                    staff_line("notice.closed_inactive", minutes=shown),
                    self.ctx.team.readers(case.department),
                )
                await self.ctx.cases.deliveries.send(
                    case.room_id,
                    {"msgtype": MessageType.NOTICE.value, "body": body},
                    key=f"inactive:{case.case_id}",
                    case_id=case.case_id,
                )
            log.info("closing %s: no message for %s minutes", case.reference, shown)
            await self.ctx.cases.close_case(
                case,
                by=None,
                note=note[0].upper() + note[1:],
                why=("closed_inactive", {"minutes": shown}),
            )
