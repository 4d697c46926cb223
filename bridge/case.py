"""Citizen cases: one ghost user and one Matrix room per case, and the two-way
flow of messages between the citizen's timeline and the case room."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mautrix.appservice import IntentAPI
from mautrix.client import ClientAPI
from mautrix.errors import MRoomInUse
from mautrix.types import (
    Event,
    MessageEvent,
    MessageType,
    RoomAlias,
    RoomCreatePreset,
    RoomID,
    StateEvent,
    TextMessageEventContent,
    UserID,
)

from .appservice import RETRY_ERRORS, DurableAppService
from .caserooms import CaseRooms, clear_room, opening_line
from .cause import derived_key
from .clock import utcnow
from .cluster import Cluster
from .config import Config, Department
from .db.models import Case, CaseEvent, MatrixSend
from .db.store import Store
from .delivery import TRANSIENT, Deliveries
from .errors import HOMESERVER_ERRORS, CaseClosed, InvalidField
from .i18n import say
from .jobs import GiveUp, JobRun
from .lifecycle import InvalidTransition, Kind, Lifecycle, State
from .signals import Signals
from .tasks import KeyedLocks
from .timeline import Timeline
from .tokens import CHAT, Tokens, new_case_id

if TYPE_CHECKING:
    from .plugins import Router

log = logging.getLogger("buergerchat.case")
#: The job that makes a case's room and sends its waiting citizen messages
#: once Synapse answers again.
ROOM_JOB = "case.room"
ROOM_RETRY = timedelta(seconds=3)
#: A safety net: rooms and messages left waiting without a job (an error on
#: the way) get one.
SWEEP_JOB = "case.sweep"
SWEEP_EVERY = timedelta(seconds=30)


class CaseService:
    def __init__(
        self,
        config: Config,
        store: Store,
        appservice: DurableAppService,
        deliveries: Deliveries,
        cluster: Cluster | None = None,
    ) -> None:
        self.config = config
        self.store = store
        #: The other bridge processes on the same database (bridge.cluster).
        self.cluster = cluster or Cluster(store.engine)
        self.az = appservice
        self.deliveries = deliveries
        deliveries.sent_hooks.append(self._sent)
        self.jobs = deliveries.jobs
        #: Every move of a case between states goes through here.
        self.lifecycle = Lifecycle(store, self.jobs)
        self.jobs.kind(ROOM_JOB, self._room_job, base=ROOM_RETRY)
        self.jobs.kind(SWEEP_JOB, self._sweep, every=SWEEP_EVERY)
        self._case_locks: KeyedLocks[str] = KeyedLocks()
        #: Mints, checks and revokes the citizens' tokens.
        self.tokens = Tokens(store, config.citizen)
        #: Every write to the citizen's timeline, which wakes the long-polls.
        self.timeline = Timeline(store)
        self.notifier = self.timeline.notifier
        # A revoked token ends its open streams now (bridge.api.events).
        self.tokens.on_forget = lambda case_id: self.notifier.notify(
            case_id, here_only=True
        )
        #: Staff typing and read receipts (ephemeral, in memory).
        self.signals = Signals(self)
        self.stopping = False
        self._room_locks: KeyedLocks[str] = KeyedLocks()
        #: Decides live/queued/offline and whom to invite; set by the routing bot.
        self.router: Router | None = None

    # --- life cycle ---------------------------------------------------------

    def start(self) -> None:
        self.az.on_event(CaseRooms(self).handle_event)
        self.az.on_ephemeral(self.signals.handle)

    async def stop(self) -> None:
        self.stopping = True
        self.notifier.wake_all()
        await self.tokens.stop()

    def forget(self, case_id: str) -> None:
        """The case was erased: nothing of it stays in this process's memory."""
        self.tokens.forget(case_id)
        self.signals.forget(case_id)
        self.timeline.forget(case_id)

    # --- opening a case -----------------------------------------------------

    async def open_case(
        self,
        *,
        department: Department,
        topic: str | None,
        citizen_name: str | None,
        language: str,
        state: str = "live",
        invite: tuple[str, ...] = (),
        routed_at: datetime | None = None,
        client_key: str | None = None,
        requested: Department | None = None,
        room: bool = True,
        opened: dict[str, Any] | None = None,
        ghost_mxid: str | None = None,
        room_id: str | None = None,
    ) -> tuple[Case, str]:
        """Create the case, its token and (if Synapse answers) its room, to which
        the ghost and the staff in ``invite`` (chosen by routing) are invited.
        ``requested``: the department the citizen chose, when routing gave the
        case to ``department`` as its fallback (the citizen is told so).
        ``room=False``: the caller calls :meth:`open_room` itself (routing does,
        once it let go of its lock, so cases open side by side). ``opened``: more
        data for the ``opened`` event; ``ghost_mxid`` and ``room_id``: a
        partner's citizen in the partner's room."""
        ghost = ghost_mxid or (
            f"@{self.config.bridge.ghost_prefix}{secrets.token_hex(8)}:"
            f"{self.config.homeserver.server_name}"
        )
        case, _ = await self.lifecycle.open(
            state=State(state),
            data={**(opened or {}), "department": department.id, "topic": topic}
            | {"invited": list(invite)},
            case_id=new_case_id(),
            reference_prefix=self.config.citizen.reference_prefix,
            department=department.id,
            topic=topic,
            language=language,
            citizen_name=citizen_name,
            ghost_mxid=ghost,
            invited=invite,
            routed_at=routed_at,
            client_key=client_key,
            room_id=room_id,
        )
        token = await self.tokens.mint_chat(case.case_id)
        if case.state != "offline":
            # An offline message is confirmed once, by its offline_received line.
            await self.add_system_event(
                case.case_id, opening_line(case, department, requested), kind="opened"
            )
        if room:
            await self.open_room(case)
        return case, token

    async def open_room(self, case: Case) -> None:
        """The new case's room now, or by a job once Synapse answers again (the
        case and the citizen's messages are safe in our database meanwhile)."""
        try:
            await self.ensure_room(case)
        except HOMESERVER_ERRORS as e:
            log.warning("room for %s not created yet: %s", case.reference, e)
            await self._room_later(case)

    async def _room_later(self, case: Case, delay: timedelta = ROOM_RETRY) -> None:
        await self.jobs.enqueue(
            ROOM_JOB,
            f"room:{case.case_id}",
            {"case_id": case.case_id},
            run_at=utcnow() + delay,
            case_id=case.case_id,
            again=True,
        )

    async def _room_job(self, run: JobRun) -> None:
        """The room, then the messages that waited for it; a failure goes back
        to the job queue, which backs off."""
        case = await self.store.get_case(str(run.payload["case_id"]))
        if case is None:
            raise GiveUp("the case is gone")
        await self.ensure_room(case)
        await self.deliver_pending(case)

    async def ensure_room(self, case: Case) -> str:
        """The case's Matrix room, created once (with the ghost and staff in it)."""
        async with self._room_locks(case.case_id):
            fresh = await self.store.get_case(case.case_id)
            if fresh is not None and fresh.room_id:
                case.room_id = fresh.room_id
                return fresh.room_id
            department = self.config.department(case.department)
            invited = list((fresh or case).invited or [])
            # The whole department may act in the room (a later invite, a
            # transfer); only the staff routing picked are invited now.
            staff = [s.mxid for s in department.staff] if department else []
            powers = {mxid: 50 for mxid in [*staff, *invited]}
            ghost = self.ghost_intent(case)
            await ghost.ensure_registered()
            # A new ghost has no name to compare with: set it (one request).
            await ghost.set_displayname(
                self.citizen_display_name(case), check_current=False
            )
            room_id = await self._create_or_find_room(
                case,
                name=f"{case.reference} · {department.name if department else ''}",
                topic=f"Bürgerchat {case.reference}"
                + (f" – {topic}" if (topic := self._topic(case)) else ""),
                preset=RoomCreatePreset.PRIVATE,
                invitees=[case.ghost_mxid, *invited],
                # Room version 12: the creator (our bot) has unlimited power and
                # must not be listed in "users".
                room_version="12",
                power_level_override={
                    "users": powers,
                    "events_default": 0,
                    "state_default": 50,
                    "invite": 50,
                    "redact": 50,
                },
            )
            await ghost.ensure_joined(RoomID(room_id))
            await self.store.update_case(case.case_id, room_id=room_id)
            case.room_id = room_id
            log.info("case %s has room %s", case.reference, room_id)
            return room_id

    def room_alias_localpart(self, case: Case) -> str:
        """Each case room has an alias in the appservice's exclusive namespace.
        Aliases are unique, so a second createRoom after a crash (the first one
        may have gone through) finds the first room instead of making another."""
        return f"{self.config.bridge.ghost_prefix}case_{case.case_id}"

    async def _create_or_find_room(self, case: Case, **room: Any) -> str:
        localpart = self.room_alias_localpart(case)
        try:
            return str(
                await self.az.intent.create_room(alias_localpart=localpart, **room)
            )
        except MRoomInUse:
            alias = RoomAlias(f"#{localpart}:{self.config.homeserver.server_name}")
            answer = await self.az.intent.resolve_room_alias(alias)
            log.info("room of %s was created before: %s", case.reference, answer)
            return str(answer.room_id)

    async def ghost_typing(self, case: Case, timeout_ms: int) -> None:
        """The case's citizen types in its room (0: stopped). ClientAPI's call,
        not IntentAPI's: that one would join the ghost again if it had been
        removed (a closing case, a kick by staff)."""
        await ClientAPI.set_typing(
            self.ghost_intent(case), RoomID(case.room_id or ""), timeout=timeout_ms
        )

    def ghost_intent(self, case: Case) -> IntentAPI:
        return self.az.intent.user(UserID(case.ghost_mxid))

    def citizen_display_name(self, case: Case) -> str:
        name = case.citizen_name or "Bürger*in"
        return f"{name} ({case.reference})"

    # --- access -------------------------------------------------------------

    async def authorize(self, case_id: str, token: str) -> Case:
        """The case, if ``token`` is a live chat token for exactly this case."""
        return await self.tokens.check(token, case_id, CHAT)

    # --- citizen → staff ----------------------------------------------------

    async def post_citizen_message(
        self, case: Case, client_id: str, body: str
    ) -> CaseEvent:
        """Store first (idempotent by client id), then deliver to the room."""
        if case.closed_at is not None:
            raise CaseClosed(
                f"Case {case.reference} is closed. Start a new chat for a new concern."
            )
        if not body.strip():
            raise InvalidField("body", "The message is empty. Type a message first.")
        event, created = await self.timeline.add(
            case.case_id,
            type="message",
            sender="citizen",
            sender_name=case.citizen_name,
            body=body,
            client_id=client_id,
            delivery="pending",
        )
        if event.delivery != "delivered":
            await self.deliver_pending(case)
            fresh = await self.store.get_event(event.seq)
            if fresh is not None:
                event = fresh
        if created:
            await self.lifecycle.publish(
                Kind.CITIZEN_MESSAGE, case, {"seq": event.seq, "body": event.body}
            )
        return event

    async def deliver_pending(self, case: Case) -> None:
        """Send the case's waiting citizen messages into its room, in order; each
        goes out once (bridge.delivery), whatever crashed in between."""
        async with self._case_locks(case.case_id):
            try:
                room_id = case.room_id or await self.ensure_room(case)
            except TRANSIENT as e:
                log.warning("messages of %s wait for their room: %s", case.reference, e)
                await self._room_later(case)
                return
            for event in await self.store.pending_events(case.case_id):
                row = await self.deliveries.enqueue(
                    room_id,
                    self._citizen_content(event).serialize(),
                    key=f"citizen:{event.seq}",
                    sender=case.ghost_mxid,
                    case_id=case.case_id,
                )
                if row.state == "sent" and row.event_id:
                    await self._sent(row)
            await self.deliveries.flush(room_id)

    async def _sent(self, row: MatrixSend) -> None:
        """A citizen message is in the room: the citizen sees it delivered."""
        if not row.key.startswith("citizen:") or not row.event_id or not row.case_id:
            return
        seq = int(row.key.split(":", 1)[1])
        await self.timeline.mark_delivered(row.case_id, seq, row.event_id)

    @staticmethod
    def _citizen_content(event: CaseEvent) -> TextMessageEventContent:
        content = TextMessageEventContent(msgtype=MessageType.TEXT, body=event.body)
        content["de.buergerchat.client_id"] = event.client_id
        return content

    async def _sweep(self, run: JobRun) -> None:
        # Within a sweep's time, not sooner: a job in backoff keeps most of it.
        await self.retry_pending(SWEEP_EVERY)

    async def recover(self) -> None:
        """At start: what an earlier run left waiting gets its jobs now, and the
        sweep is scheduled."""
        await self.jobs.enqueue(SWEEP_JOB, SWEEP_JOB, run_at=utcnow() + SWEEP_EVERY)
        await self.retry_pending()

    async def retry_pending(self, delay: timedelta = timedelta(0)) -> None:
        """Rooms and messages left waiting (by an earlier run, or an error on
        the way) get jobs, due after ``delay``."""
        for case in await self.store.cases_without_room():
            await self._room_later(case, delay)
        for case_id in await self.store.cases_with_pending_events():
            owner = await self.store.get_case(case_id)
            if owner is not None:
                await self._room_later(owner, delay)

    # --- closing ------------------------------------------------------------

    async def say_to_citizen(
        self, case: Case, event: MessageEvent, body: str, name: str | None = None
    ) -> None:
        """A staff member's words into the citizen's timeline (once per Matrix
        event), published as Kind.STAFF_MESSAGE: a message in the case room,
        or the text of ``!goodbye``."""
        row, _ = await self.timeline.add(
            case.case_id,
            type="message",
            sender="staff",
            sender_name=name or self.staff_name(case.room_id or "", event.sender),
            body=body,
            matrix_event_id=event.event_id,
            ts=datetime.fromtimestamp(event.timestamp / 1000, UTC),
        )
        await self.lifecycle.publish(
            Kind.STAFF_MESSAGE,
            case,
            {
                "event_id": str(event.event_id),
                "seq": row.seq,
                "body": body,
                "origin_ts": event.timestamp,
            },
            actor=event.sender,
            propagate=RETRY_ERRORS,
        )

    def _topic(self, case: Case) -> str | None:
        return self.config.routing.topic_label(case.topic)

    async def close_case(
        self,
        case: Case,
        *,
        by: str | None,
        note: str | None = None,
        keep: tuple[str, ...] = (),
        why: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Close once: the ``closed`` event (its reactions: the transcript archive,
        the queue moves), the citizen is told, staff leave the room so their
        accounts stay light (except ``keep``: who must still act in the room).
        ``note`` is internal (the case's events, the archive copy); ``why`` is
        what the citizen reads instead of the plain "closed" line: a key of
        the catalogue (bridge/i18n) and its values. False if already
        closed."""
        fresh = await self.store.get_case(case.case_id)
        if fresh is None:
            return False
        if fresh.closed_at is not None:
            # Closed before; by this very cause (worked off again after it broke
            # off past the move), then the rest is still to be done.
            closed = await self.lifecycle.by_this_cause(case.case_id, Kind.CLOSED)
            if closed is None:
                return False
        else:
            try:
                closed = await self.lifecycle.transition(
                    case.case_id, State.CLOSED, actor=by, data={"note": note}
                )
            except InvalidTransition:
                return False  # closed by someone else meanwhile
        fresh.state, fresh.closed_at = "closed", closed.at
        self.signals.forget(fresh.case_id)
        who = self.staff_name(fresh.room_id or "", by) if by else None
        language, reference = fresh.language, fresh.reference
        if why is not None:
            text = say(why[0], language, reference=reference, **why[1])
        elif who:
            text = say("closed_by", language, reference=reference, name=who)
        else:
            text = say("closed", language, reference=reference)
        # The note is the staff's: kept with the case's events and in the
        # archive copy of the transcript, never in what the citizen reads.
        await self.add_system_event(fresh.case_id, text, kind="closed")
        # Personal links from answer mails stay valid until they expire, so a
        # citizen can still read an answer that staff sent just before closing
        # (a closed case is read-only); staff revoke them with !revoke.
        if fresh.room_id:
            await clear_room(self, fresh, keep)
        return True

    # --- staff → citizen ----------------------------------------------------

    async def add_system_event(
        self,
        case_id: str,
        body: str,
        *,
        kind: str,
        key: str | None = None,
        **extra: Any,
    ) -> CaseEvent:
        """A system line in the citizen's timeline. With a ``key`` (given, or
        derived from the appservice event being worked off) it is added once."""
        client_id = key or derived_key("sys")
        event, _ = await self.timeline.add(
            case_id,
            type="system",
            sender="system",
            body=body,
            client_id=client_id[:100] if client_id else None,
            extra={"kind": kind, **extra},
        )
        return event

    def staff_name(
        self, room_id: str, mxid: str, event: Event | StateEvent | None = None
    ) -> str:
        """What the citizen reads as the sender; a partner authority's staff
        member with the partner's name (federation)."""
        staff = self.config.all_staff().get(mxid)
        if staff and staff.name:
            return staff.name
        displayname = getattr(getattr(event, "content", None), "displayname", None)
        name = mxid.split(":", 1)[0].lstrip("@")
        if isinstance(event, StateEvent) and displayname:
            name = str(displayname)
        return self.config.federation.staff_label(name, mxid)

    def is_bridge_user(self, mxid: str) -> bool:
        """The bot or a citizen's ghost of this server (a partner's are not)."""
        local, _, server = mxid.lstrip("@").partition(":")
        if server != self.config.homeserver.server_name:
            return False
        return local == self.config.bridge.bot_localpart or local.startswith(
            self.config.bridge.ghost_prefix
        )
