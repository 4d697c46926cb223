"""The offline bot: messages left outside the live hours become cases, are mailed
to the department and confirmed to the citizen, and staff answers written days
later in the case room bring the citizen back through a personal link.

Routes (see ``bridge/api/openapi.json``):

- ``POST /api/v1/offline-messages``: the offline form; idempotent by ``client_id``.
- ``POST /api/v1/cases/{case_id}/resume``: a personal link's token → a chat token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from hashlib import sha256
from typing import ClassVar

from aiohttp import web

from bridge.api.citizen import bearer, read_json
from bridge.clock import as_utc, utcnow
from bridge.commands import Command
from bridge.db.models import Case
from bridge.errors import CaseClosed, UnknownToken
from bridge.i18n import staff_text
from bridge.jobs import JobRun
from bridge.lifecycle import DomainEvent, Kind
from bridge.mail import answer_notice_to_citizen
from bridge.plugins import BotContext
from bridge.tokens import LINK_UNKNOWN, RESUME

from .errors import ClientIdReused, NotQueued
from .form import OfflineForm, parse_form
from .forward import Forwarder
from .models import OfflineRecord
from .privacy import OfflinePrivacy
from .store import OfflineStore

log = logging.getLogger("buergerchat.offline")
RETRY_SECONDS = 10.0
#: Half-forwarded messages are finished by one recurring job.
RETRY_JOB = "offline.retry"
GIVE_UP_AFTER = timedelta(days=1)
#: A mail waiting longer than this for the mail server makes /healthz 503.
#: Requests with the same client id are worked off one after the other.
_LOCK_STRIPES = 64


class OfflineBot:
    #: Built after the bots of lower order (bridge.plugins.load_bots).
    order: ClassVar[int] = 50
    name = "offline"

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self.outbox = ctx.mail
        self.records = OfflineStore(ctx.store.engine)
        self.forwarder = Forwarder(ctx, self.outbox, self.records)
        ctx.privacy.add_part(OfflinePrivacy(self.records).part())
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        ctx.jobs.kind(
            RETRY_JOB, self._retry_job, every=timedelta(seconds=RETRY_SECONDS)
        )
        # Published by the case service once the answer is in the timeline.
        ctx.cases.lifecycle.subscribe(Kind.STAFF_MESSAGE, self.on_staff_message)
        ctx.commands.register(
            "revoke",
            self._revoke,
            staff_text("usage.revoke", "de"),
            staff_text("help.revoke", "de"),
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/offline-messages", self.submit),
            web.post("/api/v1/cases/{case_id}/resume", self.resume),
        ]

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        await self.retry_unforwarded()
        await self.ctx.jobs.enqueue(RETRY_JOB, RETRY_JOB)

    async def stop(self) -> None:
        pass  # the job queue stops first and lets a send in flight finish

    async def _retry_job(self, run: JobRun) -> None:
        await self.retry_unforwarded()

    async def _revoke(self, command: Command) -> None:
        """E.g. when an answer mail went to the wrong address: every personal link
        of this case stops working at once; a new staff answer sends a new one."""
        count = await self.ctx.cases.tokens.revoke(command.case.case_id, RESUME)
        await self.ctx.commands.answer(
            command, "reply.revoked", count=count, reference=command.case.reference
        )
        record = await self.records.by_case(command.case.case_id)
        if record is not None:
            # The next staff answer mails a fresh link even if none was used yet.
            await self.records.update(record.id, resumed_at=utcnow())

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        stripe = int.from_bytes(sha256(key.encode()).digest()[:4], "big")
        async with self._locks[stripe % _LOCK_STRIPES]:
            yield

    # --- POST /api/v1/offline-messages ---------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        config = self.ctx.config
        form = parse_form(
            data, config.routing, max_description=config.citizen.max_message_length
        )
        await self.ctx.limits.admit(
            request,
            ("offline_per_address", "address"),
            ("offline_total", "all"),
            proof="offline",
        )
        async with self._locked(form.client_id):
            record = await self.records.by_client_id(form.client_id)
            if record is None:
                if form.case_id is not None:
                    return await self._convert(request, form)
                record, created = await self.records.claim(self._values(form, None))
            else:
                created = False
            if not created:
                _check_same(record, form)
            case, token = await self._finish(record)
        return await self._answer(case, token, status=201 if created else 200)

    def _values(self, form: OfflineForm, case: Case | None) -> dict[str, object]:
        return dict(
            client_id=form.client_id,
            case_id=case.case_id if case else None,
            converted=case is not None,
            department=case.department if case else form.department.id,
            topic=(self.ctx.config.routing.topic_label(case.topic) if case else None)
            or form.topic,
            language=form.language,
            name=form.name,
            email=form.email,
            phone=form.phone,
            description=form.description,
            created_at=utcnow(),
        )

    async def _convert(self, request: web.Request, form: OfflineForm) -> web.Response:
        """A queued citizen leaves a message instead of waiting (their own case:
        the chat token is required)."""
        assert form.case_id is not None
        case = await self.ctx.cases.authorize(form.case_id, bearer(request))
        if case.closed_at is not None:
            raise CaseClosed(
                f"Der Chat {case.reference} ist beendet. Bitte schreiben Sie eine "
                f"neue Nachricht ohne case_id. / Case {case.reference} is closed; "
                "send a new message without case_id."
            )
        record = await self.records.by_case(case.case_id)
        created = False
        if record is None:
            if case.state != "queued":
                raise NotQueued(
                    f"Der Chat {case.reference} wartet nicht in der Warteschlange "
                    f"(Zustand: {case.state}); nur ein wartender Chat kann zur "
                    "Nachricht werden. Schreiben Sie im Chat weiter. / Only a queued "
                    "chat can become a message; keep writing in the chat."
                )
            record, created = await self.records.claim(self._values(form, case))
        case, _ = await self._finish(record)
        return await self._answer(case, None, status=201 if created else 200)

    async def _finish(self, record: OfflineRecord) -> tuple[Case, str | None]:
        """Open the case if that has not happened yet, and forward what is not
        forwarded yet. Returns the case and, for a newly opened one, its token."""
        token = None
        if record.case_id is None:
            config = self.ctx.config
            department = (
                config.department(record.department)
                or config.routing.fallback_department()
            )
            assert department is not None  # the rules always have a department
            case, token = await self.ctx.cases.open_case(
                department=department,
                topic=record.topic,
                citizen_name=record.name,
                language=record.language,
                state="offline",
                # Nobody is live: the whole department may answer, later.
                invite=tuple(s.mxid for s in department.staff),
            )
            await self.records.update(record.id, case_id=case.case_id)
            record.case_id = case.case_id
            log.info("offline message %s is case %s", record.client_id, case.reference)
        else:
            found = await self.ctx.store.get_case(record.case_id)
            if found is None:  # erased meanwhile
                raise UnknownToken(LINK_UNKNOWN)
            case = found
        if record.forwarded_at is None:
            await self.forwarder.forward(record, case)
        return case, token

    async def _answer(self, case: Case, token: str | None, status: int) -> web.Response:
        if token is None:
            token = await self.ctx.cases.tokens.mint_chat(case.case_id)
        fresh = await self.ctx.store.get_case(case.case_id) or case
        return web.json_response(
            {
                "case_id": fresh.case_id,
                "reference": fresh.reference,
                "token": token,
                "state": fresh.state,
            },
            status=status,
        )

    async def retry_unforwarded(self) -> None:
        """Finish messages a crash or a Synapse outage left half-forwarded; after
        a day of failing, tell the admins and stop (the mails went out anyway)."""
        for record in await self.records.unforwarded():
            async with self._locked(record.client_id):
                fresh = await self.records.get(record.id)
                if fresh is None or fresh.forwarded_at is not None:
                    continue
                if utcnow() - as_utc(fresh.created_at) > GIVE_UP_AFTER:
                    await self.records.update(fresh.id, forwarded_at=utcnow())
                    await self.ctx.team.alert_admins(
                        f"Die Offline-Nachricht {fresh.client_id} (Fall "
                        f"{fresh.case_id}) konnte einen Tag lang nicht in Matrix "
                        "angekündigt werden (Fallraum oder Teamraum nicht "
                        "erreichbar); die E-Mails sind davon nicht betroffen."
                    )
                    continue
                await self._finish(fresh)

    # --- POST /api/v1/cases/{case_id}/resume ----------------------------------

    async def resume(self, request: web.Request) -> web.Response:
        """The personal link from an answer mail: its token buys a chat token."""
        limits = self.ctx.limits
        await limits.hit("resumes_per_address", limits.client(request))
        case_id = request.match_info["case_id"]
        case = await self.ctx.cases.tokens.check(bearer(request), case_id, RESUME)
        offline = await self.records.by_case(case_id)
        if offline is not None:
            await self.records.update(offline.id, resumed_at=utcnow())
        log.info("case %s resumed through a personal link", case.reference)
        return await self._answer(case, None, status=200)

    # --- staff answers in the case room ---------------------------------------

    async def on_staff_message(self, event: DomainEvent) -> None:
        """A staff answer to an offline message (Kind.STAFF_MESSAGE): tell the
        citizen by e-mail, once until they came back (opened the link or wrote
        again)."""
        case = event.case
        if case is None or case.closed_at is not None:
            return
        record = await self.records.by_case(case.case_id)
        if record is None or not record.email:
            return
        if not await self._citizen_away(record):
            return
        await self._send_answer_notice(case, record, str(event.data["event_id"]))

    async def _citizen_away(self, record: OfflineRecord) -> bool:
        """True unless a notice went out and the citizen has not been back since."""
        if record.answer_notified_at is None:
            return True
        notified = as_utc(record.answer_notified_at)
        if record.resumed_at is not None and as_utc(record.resumed_at) > notified:
            return True
        assert record.case_id is not None
        return await self.records.citizen_wrote_since(record.case_id, notified)

    async def _send_answer_notice(
        self, case: Case, record: OfflineRecord, event_id: str
    ) -> None:
        config, tokens = self.ctx.config, self.ctx.cases.tokens
        token = await tokens.mint_resume(case.case_id)
        department = config.department(case.department)
        assert record.email is not None
        message = answer_notice_to_citizen(
            sender=config.mail.sender,
            to=record.email,
            name=record.name,
            reference=case.reference,
            department_name=department.name if department else case.department,
            resume_url=resume_url(config.citizen.resume_page_url, case, token),
            expires_at=utcnow() + tokens.resume_ttl,
            language=case.language,
        )
        # Keyed by the staff message: a replayed transaction sends nothing twice.
        _, created = await self.outbox.enqueue(
            message, dedup_key=f"offline-answer:{event_id}", case_id=case.case_id
        )
        await self.records.update(record.id, answer_notified_at=utcnow())
        if created:
            log.info("answer notice for %s queued", case.reference)


def resume_url(page: str, case: Case, token: str) -> str:
    """The personal link: the widget page, case and token in the #fragment."""
    return f"{page}#bc-resume={case.case_id}.{token}"


def _check_same(record: OfflineRecord, form: OfflineForm) -> None:
    """A repeated client id must carry the same message: otherwise it is another
    message that reused an id (and must not get this case's token)."""
    same = (
        record.description == form.description
        and record.name == form.name
        and (record.email or None) == form.email
        and (record.phone or None) == form.phone
    )
    if not same:
        raise ClientIdReused(
            "Diese client_id gehört schon zu einer anderen Nachricht; bitte eine neue "
            "erzeugen. / This client_id already belongs to another message; "
            "generate a new one.",
            field="client_id",
        )
