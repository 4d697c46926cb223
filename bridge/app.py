"""The bridge process: database, appservice, citizen API, widget, health."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from .accessibility.pages import accessibility_routes
from .api.citizen import MAX_JSON_BYTES, CitizenAPI
from .api.events import CaseEvents
from .api.headers import security_headers
from .api.middleware import cors_middleware, errors_middleware
from .api.widget import widget_routes
from .appservice import OLDEST_WORKED_OFF, DurableAppService
from .blocks import Blocks
from .case import CaseService
from .catchup import CatchUp
from .clock import as_utc, utcnow
from .cluster import Cluster, process_name
from .commands import CommandRouter
from .config import Config
from .db.engine import create_engine, database_url, migrate
from .db.store import Store
from .delivery import Deliveries
from .health import Health
from .homeserver import Secrets, versions_answer
from .jobs import JobQueue
from .limits import Limits
from .mail.outbox import Outbox
from .mail.service import build_outbox, outbox_health
from .metrics import Metrics
from .peers import join
from .plugins import Bot, BotContext, load_bots
from .privacy.commands import register_erase_command
from .privacy.notice import privacy_routes
from .privacy.service import Privacy
from .proof import Proofs
from .synapse_admin import SynapseAdmin, load_admin_token
from .team import TeamRooms

log = logging.getLogger("buergerchat.bridge")
#: Transactions waiting longer than this make the inbox count as down.
INBOX_HEALTHY_LAG_S = 60.0
#: Due jobs waiting longer than this make the job queue count as down.
JOBS_HEALTHY_LAG_S = 120.0
OPENAPI = Path(__file__).parent / "api" / "openapi.json"
APPSERVICE_ID = "buergerchat"


class Bridge:
    def __init__(self, config: Config, secrets: Secrets) -> None:
        self.config = config
        self.secrets = secrets
        self.store: Store | None = None
        self.cluster: Cluster | None = None
        self.appservice: DurableAppService | None = None
        self.cases: CaseService | None = None
        self.deliveries: Deliveries | None = None
        self.jobs: JobQueue | None = None
        self.bots: list[Bot] = []
        self.team: TeamRooms | None = None
        self.mail: Outbox | None = None
        self.privacy: Privacy | None = None
        self.metrics: Metrics | None = None
        self.health = Health()

    async def start(self) -> None:
        """Database, appservice, core services and bots, then the web server;
        the workers start last, once every handler and job kind is known."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url(config.bridge.database, config.data_dir))
        await migrate(engine)
        self.store = Store(engine)
        self.cluster = cluster = Cluster(engine, process_name(config.bridge.port))
        self.jobs = JobQueue(engine, owner=cluster.name)
        self.appservice = az = self._appservice(self.store, cluster)
        self.deliveries = Deliveries(self.store, az, self.jobs)
        # First handler: the bridge's own events coming back mark their sends.
        az.on_event(self.deliveries.observe)
        self.cases = CaseService(config, self.store, az, self.deliveries, cluster)
        join(cluster, self.cases, az)
        await cluster.start()
        commands = CommandRouter(config, self.cases)
        self.team = TeamRooms(config, az, self.deliveries)
        self.mail = build_outbox(
            self.store.engine, config.mail, self.jobs, self.team.alert_admins
        )
        self.limits = Limits(
            config.limits,
            Blocks(
                self.store.engine,
                self.secrets["client_key_secret"],
                config.limits.block_hours,
            ),
            Proofs(self.secrets["client_key_secret"], config.limits.proof_difficulty),
        )
        self.team.blocks = self.limits.blocks
        self.privacy = self._privacy(az, commands)
        self._register_health()
        self.bots = load_bots(self._bot_context(az, commands))
        self._add_routes(az)
        await az.start(config.bridge.host, config.bridge.port)
        await self._prepare_bot_user(az)
        self.cases.start()
        for bot in self.bots:
            await bot.start()
        # Bots have registered their job kinds: work off what an earlier run left.
        self.jobs.start()
        await self.deliveries.recover()
        await self.cases.recover()
        # Mails left waiting get their job; the retention sweep its own.
        await self.mail.recover()
        await self.privacy.start()
        if az.lease is not None:
            az.lease.on_gained = az.lease_gained
            az.lease.start()
        az.start_worker()
        log.info("bridge listens on %s:%d", config.bridge.host, config.bridge.port)

    def _privacy(self, az: DurableAppService, commands: CommandRouter) -> Privacy:
        config = self.config
        assert self.store and self.cases and self.jobs and self.mail

        def admin() -> SynapseAdmin:
            token = load_admin_token(
                embedded=config.homeserver.embedded,
                data_dir=config.data_dir,
                config_dir=config.config_dir,
                token_file=config.homeserver.admin_token_file
                or _scanner_token_file(config),
            )
            return SynapseAdmin(config.homeserver.url, token)

        privacy = Privacy(
            config, self.store, self.cases, az, self.jobs, self.mail, admin
        )
        register_erase_command(commands, privacy)
        return privacy

    def _appservice(self, store: Store, cluster: Cluster) -> DurableAppService:
        config = self.config
        # Each process keeps its own (they share the data folder).
        state = f"mx-state-{cluster.name.rsplit(':', 2)[0].replace(':', '-')}.json"
        az = DurableAppService(
            store=store,
            state_file=config.data_dir / (state if cluster.shared else "mx-state.json"),
            middlewares=[
                security_headers,
                cors_middleware(config.bridge.allowed_origins),
                errors_middleware,
            ],
            client_max_size=max(
                MAX_JSON_BYTES, config.homeserver.max_upload_size_mb << 20
            )
            + (1 << 20),
            server=config.homeserver.url,
            domain=config.homeserver.server_name,
            as_token=self.secrets["as_token"],
            hs_token=self.secrets["hs_token"],
            bot_localpart=config.bridge.bot_localpart,
            id=APPSERVICE_ID,
            bridge_name="buergerchat",
        )
        if cluster.shared:
            # Any process stores what Synapse pushes; one works it off.
            az.lease = cluster.lease("appservice-inbox")
        az.catch_up = CatchUp(
            store,
            az,
            lambda: store.active_rooms(closed_within=timedelta(days=1)),
            horizon=OLDEST_WORKED_OFF,
        )
        return az

    def _add_routes(self, az: DurableAppService) -> None:
        assert self.cases is not None and self.metrics is not None
        az.app.add_routes(
            CitizenAPI(self.config, self.cases, self.limits, self.metrics).routes()
        )
        az.app.add_routes(CaseEvents(self.config, self.cases, self.limits).routes())
        az.app.add_routes(self.metrics.routes(self.config.metrics_allow))
        for bot in self.bots:
            routes = getattr(bot, "routes", None)
            if routes is not None:
                az.app.add_routes(routes())
        az.app.add_routes(widget_routes(self.config))
        az.app.add_routes(privacy_routes(self.config))
        assert self.mail is not None
        az.app.add_routes(accessibility_routes(self.config, self.limits, self.mail))
        az.app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/api/v1/openapi.json", self.openapi),
            ]
        )

    def _bot_context(
        self, az: DurableAppService, commands: CommandRouter
    ) -> BotContext:
        assert self.store is not None and self.cases is not None
        assert self.team is not None and self.jobs is not None
        assert self.mail is not None and self.privacy is not None
        assert self.metrics is not None
        return BotContext(
            self.config,
            self.store,
            self.cases,
            az,
            commands,
            self.team,
            self.health,
            self.jobs,
            self.mail,
            self.limits,
            self.privacy,
            self.metrics.count,
        )

    async def _prepare_bot_user(self, az: DurableAppService) -> None:
        await az.intent.ensure_registered()
        try:
            await az.intent.set_displayname(self.config.bridge.bot_displayname)
        except Exception:
            log.warning("could not set the bot's display name", exc_info=True)
        assert self.team is not None
        try:
            await self.team.ensure_rooms()
        except Exception:
            log.warning("team and admin rooms not ready yet", exc_info=True)

    async def stop(self) -> None:
        if self.cases is not None:
            # Open long-polls answer now, so the web server can shut down at once.
            self.cases.stopping = True
            self.cases.notifier.wake_all()
        if self.appservice is not None:
            await self.appservice.stop_worker()
            if self.appservice.lease is not None:
                await self.appservice.lease.stop()  # another takes it at once
        if self.jobs is not None:
            await self.jobs.stop()
        for bot in reversed(self.bots):
            await bot.stop()
        if self.cases is not None:
            await self.cases.stop()
        if self.appservice is not None:
            await self.appservice.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.store is not None:
            await self.store.close()

    def request_catch_up(self) -> None:
        if self.appservice is not None:
            self.appservice.request_catch_up()

    async def alert_admins(self, text: str) -> None:
        """A notice in the admin room (stored and posted once Synapse answers)."""
        if self.team is not None:
            await self.team.alert_admins(text)

    def _register_health(self) -> None:
        self.health.register("database", self._database_health)
        self.health.register("homeserver", self._homeserver_health)
        self.health.register("appservice_inbox", self._inbox_health)
        assert self.deliveries is not None
        self.health.register("deliveries", self.deliveries.health)
        self.health.register("jobs", self._jobs_health)
        assert self.mail is not None
        mail = self.mail
        self.health.register("mail_outbox", lambda: outbox_health(mail))
        # /metrics shows the same parts, and counts what the cases go through.
        assert self.store is not None and self.cases is not None
        self.metrics = Metrics(
            self.store,
            self.health,
            self.limits,
            lambda: [d.id for d in self.config.departments],
        )
        self.metrics.watch(self.cases.lifecycle)
        metrics = self.metrics
        mail.on_outcome = lambda outcome: metrics.count("mail", outcome)

    async def _jobs_health(self) -> dict[str, object]:
        """Due jobs not taken for long mean no worker runs (parked ones are the
        admins' to look at; their parts say so)."""
        assert self.jobs is not None
        counts = await self.jobs.counts()
        return {"ok": counts["lag_seconds"] < JOBS_HEALTHY_LAG_S, **counts}

    async def _database_health(self) -> dict[str, object]:
        assert self.store is not None
        async with self.store.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"ok": True}

    async def _homeserver_health(self) -> dict[str, object]:
        return {"ok": await versions_answer(self.config.homeserver.url)}

    async def _inbox_health(self) -> dict[str, object]:
        """Transactions Synapse pushed that are not worked off yet."""
        assert self.store is not None
        waiting, oldest = await self.store.inbox_lag()
        lag = (utcnow() - as_utc(oldest)).total_seconds() if oldest else 0.0
        assert self.appservice is not None
        return {
            "ok": lag < INBOX_HEALTHY_LAG_S,
            "waiting": waiting,
            "lag_seconds": lag,
            # Several processes: only the lease holder works it off.
            "worked_off_here": self.appservice.working_here(),
        }

    async def healthz(self, request: web.Request) -> web.Response:
        """Each part: database, homeserver, appservice inbox, deliveries, and what
        the bots register (clamd, mail outbox); 503 when one is down."""
        ok, parts = await self.health.report()
        body: dict[str, object] = {"status": "ok" if ok else "degraded"}
        body.update(parts)
        return web.json_response(body, status=200 if ok else 503)

    async def openapi(self, request: web.Request) -> web.Response:
        spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
        spec["servers"] = [{"url": self.config.bridge.public_url}]
        return web.json_response(spec)


def _scanner_token_file(config: Config) -> str | None:
    """The admin token file of older configs, set in the scanner's section."""
    return getattr(config.plugins.get("scanner"), "admin_token_file", None)
