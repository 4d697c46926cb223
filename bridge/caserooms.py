"""What staff do in a case room reaches the citizen and the bots: the one
appservice handler for case rooms. It filters once (no bridge users), looks the
case up once, writes the citizen's timeline and publishes the event for the bots
(Kind.STAFF_MESSAGE, STAFF_FILE, STAFF_JOINED, STAFF_COMMAND; see
bridge.lifecycle)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mautrix.types import (
    Event,
    EventType,
    Membership,
    MessageEvent,
    MessageType,
    RoomID,
    StateEvent,
)

from .appservice import RETRY_ERRORS
from .db.models import Case
from .errors import HOMESERVER_ERRORS
from .i18n import say
from .lifecycle import Kind, State

if TYPE_CHECKING:
    from .case import CaseService
    from .config import Config, Department

log = logging.getLogger("buergerchat.case")

#: Staff files: the scanner takes them (Kind.STAFF_FILE).
FILE_TYPES = frozenset(
    {MessageType.FILE, MessageType.IMAGE, MessageType.AUDIO, MessageType.VIDEO}
)


class CaseRooms:
    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    async def handle_event(self, event: Event) -> None:
        """Staff activity in a case room: messages and joins become part of the
        citizen's timeline; each is published as an event (Kind.STAFF_MESSAGE,
        STAFF_FILE, STAFF_JOINED) for the bots, after the case was looked up once.
        Errors of Synapse or the database reach the inbox, which works the
        transaction off again (everything here is idempotent)."""
        room_id = getattr(event, "room_id", None)
        sender = getattr(event, "sender", None)
        if not room_id or not sender or self.cases.is_bridge_user(sender):
            return
        if self.cases.config.federation.is_partner_bot(sender):
            return  # a partner authority's bridge (bots/handover)
        case = await self.cases.store.case_by_room(room_id)
        if case is None:
            return
        partner = self.cases.config.federation.of_user(sender)
        if partner is not None and sender != case.ghost_mxid:
            if case.state != State.HANDED_OVER:
                # A partner's people reach the citizen only once the partner
                # took the case (after the citizen's consent; bots/handover).
                return
        if isinstance(event, MessageEvent) and sender == case.ghost_mxid:
            # A partner's citizen (a case handed over to us): their words are
            # the citizen's in our record too.
            await self._remote_citizen(case, event)
        elif isinstance(event, MessageEvent) and event.type == EventType.ROOM_MESSAGE:
            await self._staff_message(case, event)
        elif (
            isinstance(event, StateEvent)
            and event.type == EventType.ROOM_MEMBER
            and event.content.membership == Membership.JOIN
            and getattr(event.prev_content, "membership", None) != Membership.JOIN
        ):
            await self._staff_joined(case, event)

    async def _staff_joined(self, case: Case, event: StateEvent) -> None:
        department = self.cases.config.department(case.department)
        label = department.name if department else case.department
        partner = self.cases.config.federation.of_user(event.sender)
        if partner is not None:  # "Anna Schmidt (Landratsamt) ist beigetreten"
            name = getattr(event.content, "displayname", None) or event.sender
            label = partner.name
        else:
            name = self.cases.staff_name(case.room_id or "", event.sender, event)
        await self.cases.add_system_event(
            case.case_id,
            say("staff_joined", case.language, name=name, department=label),
            kind="staff_joined",
            staff_name=name,
        )
        await self.cases.lifecycle.publish(
            Kind.STAFF_JOINED,
            case,
            {"event_id": str(event.event_id)},
            actor=event.sender,
            propagate=RETRY_ERRORS,
        )

    async def _remote_citizen(self, case: Case, event: MessageEvent) -> None:
        if case.closed_at is not None:
            return  # given back or closed here: no longer ours to record
        content = event.content
        if event.type != EventType.ROOM_MESSAGE or not isinstance(
            getattr(content, "body", None), str
        ):
            return
        body = content.body
        if getattr(content, "msgtype", None) in FILE_TYPES:
            body = f"📎 {body}"  # scanned by the partner, who received it
        row, created = await self.cases.timeline.add(
            case.case_id,
            type="message",
            sender="citizen",
            sender_name=case.citizen_name,
            body=body,
            matrix_event_id=event.event_id,
            ts=datetime.fromtimestamp(event.timestamp / 1000, UTC),
        )
        if created:
            await self.cases.lifecycle.publish(
                Kind.CITIZEN_MESSAGE,
                case,
                {"seq": row.seq, "body": row.body},
                propagate=RETRY_ERRORS,
            )

    async def _staff_message(self, case: Case, event: MessageEvent) -> None:
        content = event.content
        data = {"event_id": str(event.event_id)}
        if content.msgtype in FILE_TYPES and is_remote_citizen(self.cases.config, case):
            # A partner's citizen: the partner's bridge receives the file and
            # scans it before the citizen gets it; our record keeps its name.
            await self.cases.say_to_citizen(case, event, f"📎 {content.body}")
            return
        if content.msgtype in FILE_TYPES:
            await self.cases.lifecycle.publish(
                Kind.STAFF_FILE,
                case,
                {**data, "content": content.serialize()},
                actor=event.sender,
                propagate=RETRY_ERRORS,
            )
            return
        if content.msgtype not in (MessageType.TEXT, MessageType.EMOTE):
            return  # notices are for staff
        if content.body.startswith("!"):
            # A command for the bots, not a message to the citizen; a partner
            # authority's staff command is for the partner's bots.
            partner = self.cases.config.federation.of_user(event.sender)
            if content.msgtype == MessageType.TEXT and partner is None:
                await self.cases.lifecycle.publish(
                    Kind.STAFF_COMMAND,
                    case,
                    {**data, "event": event},
                    actor=event.sender,
                    propagate=RETRY_ERRORS,
                )
            return
        await self.cases.say_to_citizen(
            case, event, content.body, await self._partner_staff_name(event)
        )

    async def _partner_staff_name(self, event: MessageEvent) -> str | None:
        """A partner authority's staff member: their display name in the room
        and the partner's name (federation); None for our own staff."""
        federation = self.cases.config.federation
        if federation.of_user(event.sender) is None:
            return None
        member = await self.cases.az.state_store.get_member(event.room_id, event.sender)
        name = (member.displayname if member else None) or event.sender
        return federation.staff_label(name, event.sender)


def is_remote_citizen(config: Config, case: Case) -> bool:
    """A case handed over by a partner authority: its citizen's ghost lives on
    the partner's server (bots/handover)."""
    return case.ghost_mxid.partition(":")[2] != config.homeserver.server_name


async def clear_room(
    cases: CaseService, case: Case, keep: tuple[str, ...] = ()
) -> None:
    """A closed case's room: staff are removed and the ghost leaves (except
    ``keep``: who must still act in it), so staff accounts stay light."""
    bot = cases.az.intent
    if case.room_id is None:
        return
    room_id = RoomID(case.room_id)
    try:
        members = await bot.get_room_members(room_id)
    except HOMESERVER_ERRORS:
        log.warning("could not list members of %s", case.room_id, exc_info=True)
        return
    remote = is_remote_citizen(cases.config, case)
    for mxid in members:
        if mxid == bot.mxid or mxid in keep:
            continue
        if remote and not mxid.endswith(f":{cases.config.homeserver.server_name}"):
            continue  # a partner's room: its own people stay
        if cases.config.federation.is_partner_bot(mxid):
            # A partner's bridge stays, so it can still read (and verify) its
            # own record of the case: a room left is forgotten on its server.
            continue
        try:
            if mxid == case.ghost_mxid:
                await cases.ghost_intent(case).leave_room(room_id)
            else:
                await bot.kick_user(room_id, mxid, "Fall abgeschlossen")
        except HOMESERVER_ERRORS:
            log.warning("could not remove %s from %s", mxid, case.room_id)


def opening_line(
    case: Case, department: Department, requested: Department | None
) -> str:
    """The first line of the citizen's timeline; it names the fallback when
    the department asked for was not staffed (never a silent rerouting)."""
    text = say(
        "opened", case.language, reference=case.reference, department=department.name
    )
    if requested is None or requested.id == department.id:
        return text
    moved = say(
        "opened_via_fallback",
        case.language,
        requested=requested.name,
        department=department.name,
    )
    return f"{moved} {text}"
