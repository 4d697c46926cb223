"""The bridge in one process without Synapse: the real core (store on SQLite,
job queue, case service, deliveries, team rooms, commands) and the real bots,
on the fake homeserver of ``tests/fakehs.py`` and a :class:`FakeClock`.

Matrix events reach the handlers as the durable inbox hands them over
(``staff_says``, ``staff_joins``, ``deliver``); jobs run when a test says so
(``run_jobs``), at the fake clock's time. No web server, no child process: the
scanner's clamd is not started (its tests below the e2e layer use the fake
clamd of ``tests/unit/test_scanner_*``).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from mautrix.types import Event

from bridge.api.citizen import CitizenAPI
from bridge.api.events import CaseEvents
from bridge.api.middleware import errors_middleware
from bridge.blocks import Blocks
from bridge.case import CaseService
from bridge.cause import caused_by
from bridge.clock import FakeClock, use_clock
from bridge.commands import CommandRouter
from bridge.config import Config, load_config
from bridge.db.engine import create_engine, database_url, migrate
from bridge.db.models import Case
from bridge.db.store import Store
from bridge.delivery import Deliveries
from bridge.health import Health
from bridge.jobs import JobQueue
from bridge.limits import Limits
from bridge.mail.service import build_outbox
from bridge.plugins import Bot, BotContext, load_bots
from bridge.privacy.commands import register_erase_command
from bridge.privacy.service import Privacy
from bridge.team import TeamRooms
from tests.fakehs import FakeHomeserver, FakeSynapseAdmin

REPO = Path(__file__).resolve().parents[1]
#: A Tuesday, 10:00 in Berlin: the example's departments are live.
TUESDAY_MORNING = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class FakeStateStore:
    """mautrix's state cache, as far as the core reads it: a member's name."""

    def __init__(self, hs: FakeHomeserver) -> None:
        self.hs = hs

    async def get_member(self, room_id: str, user_id: str) -> Any:
        name = self.hs.displaynames.get(user_id)
        return SimpleNamespace(displayname=name) if name else None


class FakeAppService:
    """What the core uses of mautrix's AppService: the bot's intent and the
    handlers of incoming events, called as the durable inbox calls them."""

    def __init__(self, hs: FakeHomeserver, bot_mxid: str) -> None:
        self.intent = hs.intent(bot_mxid)
        self.bot_mxid = bot_mxid
        self.state_store = FakeStateStore(hs)
        self.handlers: list[Any] = []
        self.ephemeral: list[Any] = []
        self.forgotten: list[tuple[str | None, str]] = []

    def on_event(self, handler: Any) -> None:
        self.handlers.append(handler)

    def on_ephemeral(self, handler: Any) -> None:
        self.ephemeral.append(handler)

    def request_catch_up(self) -> None:
        pass

    async def forget(self, room_id: str | None, user_id: str) -> None:
        """Erasure: the real one clears mautrix's state file."""
        self.forgotten.append((room_id, user_id))


class Harness:
    def __init__(self, config: Config, store: Store, clock: FakeClock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.hs = FakeHomeserver(config.homeserver.server_name)
        for mxid in config.all_staff():
            self.hs.presence[mxid] = "online"
        self.az = FakeAppService(self.hs, config.bot_mxid)
        self.jobs = JobQueue(store.engine)
        self.deliveries = Deliveries(store, self.az, self.jobs)  # type: ignore[arg-type]
        self.az.on_event(self.deliveries.observe)
        self.cases = CaseService(config, store, self.az, self.deliveries)  # type: ignore[arg-type]
        self.commands = CommandRouter(config, self.cases)
        self.team = TeamRooms(config, self.az, self.deliveries)  # type: ignore[arg-type]
        outbox = build_outbox(
            store.engine, config.mail, self.jobs, self.team.alert_admins
        )
        self.admin = FakeSynapseAdmin(self.hs)
        self.privacy = Privacy(
            config,
            store,
            self.cases,
            self.az,  # type: ignore[arg-type]
            self.jobs,
            outbox,
            lambda: self.admin,  # type: ignore[arg-type,return-value]
        )
        register_erase_command(self.commands, self.privacy)
        self.ctx = BotContext(
            config,
            store,
            self.cases,
            self.az,  # type: ignore[arg-type]
            self.commands,
            self.team,
            Health(),
            self.jobs,
            outbox,
            Limits(
                config.limits,
                Blocks(store.engine, "test secret", config.limits.block_hours),
            ),
            self.privacy,
        )
        self.team.blocks = self.ctx.limits.blocks
        self.bots: dict[str, Bot] = {b.name: b for b in load_bots(self.ctx)}
        self.cases.start()
        self._ids = itertools.count(1)
        self._started: list[str] = []

    def bot(self, name: str) -> Any:
        return self.bots[name]

    async def start(self, *names: str) -> None:
        """Start these bots (their jobs, timers, workers); stopped at the end."""
        for name in names:
            await self.bots[name].start()
            self._started.append(name)

    async def stop(self) -> None:
        for name in reversed(self._started):
            await self.bots[name].stop()

    # --- driving it -------------------------------------------------------------

    async def run_jobs(self, rounds: int = 5) -> None:
        """Work off every due job (and what those enqueue), at the clock's time."""
        for _ in range(rounds):
            if not await self.jobs.run_due():
                return

    async def open_case(
        self, department: str = "buergerbuero", *, language: str = "de", **kw: Any
    ) -> tuple[Case, str]:
        """A case as ``POST /cases`` opens it: through the routing bot."""
        target = self.config.department(department)
        assert target is not None and self.cases.router is not None
        decision, case, token = await self.cases.router.open_case(
            department=target,
            topic=kw.get("topic"),
            citizen_name=kw.get("citizen_name", "Erika Muster"),
            language=language,
            client_key=kw.get("client_key"),
        )
        assert case is not None and token is not None, decision.reason
        return case, token

    async def deliver(self, raw: dict[str, Any]) -> None:
        """One event from Synapse, to every handler in order, as the inbox does."""
        raw.setdefault("event_id", f"$in{next(self._ids)}")
        raw.setdefault("origin_server_ts", int(self.clock.now().timestamp() * 1000))
        event = Event.deserialize(raw)
        for place, handler in enumerate(self.az.handlers):
            with caused_by(f"{raw['event_id']}/{place}"):
                await handler(event)

    async def staff_says(
        self, case: Case, sender: str, body: str, **content: Any
    ) -> None:
        fresh = await self.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        await self.deliver(
            {
                "type": "m.room.message",
                "room_id": fresh.room_id,
                "sender": sender,
                "content": {"msgtype": "m.text", "body": body, **content},
            }
        )

    async def staff_joins(self, case: Case, sender: str) -> None:
        fresh = await self.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        self.hs.rooms[fresh.room_id].members[sender] = "join"
        await self.deliver(
            {
                "type": "m.room.member",
                "room_id": fresh.room_id,
                "sender": sender,
                "state_key": sender,
                "content": {"membership": "join"},
                "unsigned": {"prev_content": {"membership": "invite"}},
            }
        )

    async def timeline(self, case: Case) -> list[dict[str, Any]]:
        from bridge.timeline import event_json

        return [event_json(e) for e in await self.store.events_after(case.case_id, 0)]

    @asynccontextmanager
    async def api(self) -> AsyncIterator[TestClient]:
        """The citizen API and the bots' routes, served in this process."""
        app = web.Application(middlewares=[errors_middleware])
        app.add_routes(CitizenAPI(self.config, self.cases, self.ctx.limits).routes())
        app.add_routes(CaseEvents(self.config, self.cases, self.ctx.limits).routes())
        for bot in self.bots.values():
            routes = getattr(bot, "routes", None)
            if routes is not None:
                app.add_routes(routes())
        async with TestClient(TestServer(app)) as client:
            yield client

    async def system_lines(self, case: Case) -> list[str]:
        return [e["body"] for e in await self.timeline(case) if e["type"] == "system"]


def example_config(tmp_path: Path, change: Any = None) -> Config:
    """The example configuration, with its folders under ``tmp_path``; ``change``
    edits buergerchat.yaml's data (a dict) before loading."""
    import yaml

    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    if change is not None:
        path = folder / "buergerchat.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(folder, tmp_path / "data")


@asynccontextmanager
async def harness(
    tmp_path: Path, *, start: datetime = TUESDAY_MORNING, change: Any = None
) -> AsyncIterator[Harness]:
    config = example_config(tmp_path, change)
    engine = create_engine(database_url("sqlite", config.data_dir))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(engine)
    store = Store(engine)
    with use_clock(FakeClock(start)) as clock:
        assert isinstance(clock, FakeClock)
        h = Harness(config, store, clock)
        try:
            await h.start("routing")
            yield h
        finally:
            await h.stop()
            await store.close()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
