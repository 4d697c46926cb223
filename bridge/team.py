"""The rooms where the bot talks to staff outside case rooms: each department's team
room (a notice per new case) and the admins' room (alerts: a broken config edit, a
parked e-mail, a file that could never be scanned).

Rooms are named in ``departments.yaml`` by ID (``!abc:server``) or alias
(``#team-bauen:server``). An alias on our own homeserver that does not exist yet is
created by the bot, with the department's staff (or the admins) invited, so a fresh
install works without clicking rooms together in Element first.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, cast
from urllib.parse import quote

from mautrix.errors import MatrixError, MNotFound
from mautrix.types import (
    JSON,
    EventType,
    Format,
    Membership,
    MessageType,
    RoomAlias,
    RoomCreatePreset,
    RoomID,
    UserID,
)

if TYPE_CHECKING:
    from mautrix.appservice import AppService, IntentAPI

    from .blocks import Blocks
    from .config import Config
    from .db.models import Case
    from .delivery import Deliveries

from .clock import as_utc
from .errors import HOMESERVER_ERRORS
from .i18n import SOURCE, Localized, for_readers, language_name, staff_text

log = logging.getLogger("buergerchat.team")

#: Longest quote of the citizen's first message in a team notice.
FIRST_MESSAGE_QUOTE = 300
#: Chats of one address within this time count as one burst.
BURST_WINDOW = timedelta(hours=1)
#: The state event that marks a team or admin room (its ``kind``); Synapse's
#: module buergerchat_teams joins staff invited to such a room at once.
ROOM_MARKER = "de.buergerchat.room"
ROOM_MARKER_TYPE = EventType(ROOM_MARKER, EventType.Class.STATE)

#: The heading of a team notice by the case's state (staff catalogue keys).
STATE_LABELS = {
    "live": "team.new_live",
    "queued": "team.new_queued",
    "offline": "team.new_offline",
}
#: Between the German notice and its English copy in the HTML body.
MARKUP_SEPARATOR = "<br><br>"


def matrix_to(room_id: str, server_name: str) -> str:
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}?via={quote(server_name)}"


class TeamRooms:
    def __init__(
        self, config: Config, appservice: AppService, deliveries: Deliveries
    ) -> None:
        self.config = config
        self.appservice = appservice
        self.deliveries = deliveries
        #: Which cases came from one address (set by the bridge; None in tests
        #: that need no burst summaries).
        self.blocks: Blocks | None = None
        self._resolved: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @property
    def intent(self) -> IntentAPI:
        """The bot's intent (mautrix makes it only when the appservice starts)."""
        return self.appservice.intent

    # --- resolving and creating rooms ---------------------------------------

    async def resolve(
        self,
        room: str,
        invite: tuple[str, ...] = (),
        *,
        propagate: tuple[type[BaseException], ...] = (),
    ) -> str | None:
        """The room ID for ``room`` (ID or alias), joined by the bot; created when
        it is an alias on our homeserver that does not exist yet. None (and a
        warning in the log) when the room cannot be reached, except for errors
        of the ``propagate`` types (Synapse away: the caller retries)."""
        async with self._lock:
            if room in self._resolved:
                return self._resolved[room]
            try:
                room_id = await self._resolve(room, invite)
            except propagate:
                raise
            except HOMESERVER_ERRORS as e:
                log.warning("room %s cannot be used: %s", room, e)
                return None
            self._resolved[room] = room_id
            return room_id

    async def _resolve(self, room: str, invite: tuple[str, ...]) -> str:
        if room.startswith("!"):
            await self.intent.ensure_joined(RoomID(room))
            return room
        alias = RoomAlias(room)
        try:
            answer = await self.intent.resolve_room_alias(alias)
        except MNotFound:
            server = room.split(":", 1)[1]
            if server != self.config.homeserver.server_name:
                raise
            localpart = room.split(":", 1)[0].lstrip("#")
            created = await self.intent.create_room(
                alias_localpart=localpart,
                name=localpart.replace("-", " ").replace("_", " ").title(),
                topic="Bürgerchat: Hinweise des Bots zu neuen Fällen",
                preset=RoomCreatePreset.PRIVATE,
                invitees=[UserID(m) for m in invite],
                room_version="12",
                power_level_override={"users": {m: 50 for m in invite}},
                # Before the invites: Synapse then joins the invited staff at
                # once (synapse/modules/buergerchat_teams.py).
                initial_state=[
                    {
                        "type": ROOM_MARKER,
                        "state_key": "",
                        "content": {"kind": self._kind(room)},
                    }
                ],
            )
            log.info("created room %s as %s", room, created)
            return str(created)
        await self.intent.ensure_joined(answer.room_id)
        return str(answer.room_id)

    def _kind(self, room: str) -> str:
        return "admins" if room == self.config.routing.admin_room else "team"

    async def _mark(self, room: str, room_id: str) -> None:
        """A room made before the marker existed (or given by ID) gets it, so
        the staff invited from now on are joined at once."""
        try:
            await self.intent.get_state_event(RoomID(room_id), ROOM_MARKER_TYPE)
            return
        except MNotFound:
            pass
        except HOMESERVER_ERRORS as e:
            log.warning("marker of %s unknown: %s", room, e)
            return
        # mautrix types content as JSON, which a plain dict literal is not to mypy
        content = cast("dict[str, JSON]", {"kind": self._kind(room)})
        try:
            await self.intent.send_state_event(
                RoomID(room_id), ROOM_MARKER_TYPE, content
            )
        except HOMESERVER_ERRORS as e:
            log.warning("could not mark %s as a Bürgerchat room: %s", room, e)

    def wanted_rooms(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each team room with its department's staff, the admin room with the
        admins: who should be in which room by the current rules."""
        wanted = [
            (d.team_room, tuple(s.mxid for s in d.staff))
            for d in self.config.departments
            if d.team_room
        ]
        if self.config.routing.admin_room:
            wanted.append((self.config.routing.admin_room, self.config.routing.admins))
        return wanted

    async def ensure_rooms(self) -> None:
        """At start and after a rules reload: every team room and the admin room
        exist, the bot is in them, and everyone the rules name who is neither
        joined nor invited yet is invited."""
        for room, members in self.wanted_rooms():
            room_id = await self.resolve(room, members)
            if room_id is None or not members:
                continue
            await self._mark(room, room_id)
            try:
                present = set(
                    await self.intent.get_room_members(
                        RoomID(room_id), (Membership.JOIN, Membership.INVITE)
                    )
                )
            except HOMESERVER_ERRORS as e:
                log.warning("members of %s unknown: %s", room, e)
                continue
            for mxid in members:
                if mxid in present:
                    continue
                try:
                    await self.intent.invite_user(RoomID(room_id), UserID(mxid))
                except MatrixError as e:
                    log.info("could not invite %s to %s: %s", mxid, room, e)

    # --- posting ------------------------------------------------------------

    async def _notice(
        self,
        room_id: str,
        text: str,
        markup: str,
        key: str | None,
        kind: str,
        case_id: str | None = None,
    ) -> None:
        """Stored, then sent once (bridge.delivery): a notice is never lost when
        Synapse is away, and never posted twice after a crash. A notice about
        one case names it (``case_id``): erasing the case removes the notice."""
        content = {
            "msgtype": MessageType.NOTICE.value,
            "body": text,
            "format": Format.HTML.value,
            "formatted_body": markup,
        }
        await self.deliveries.send(
            room_id, content, key=key, kind=kind, case_id=case_id
        )

    def readers(self, department_id: str) -> tuple[str, ...]:
        """The languages of a department's staff: a notice in its team room or
        in one of its case rooms is written for them (bridge.i18n.for_readers)."""
        department = self.config.department(department_id)
        return department.languages if department is not None else ()

    async def announce_case(
        self,
        case: Case,
        *,
        first_message: str | None = None,
        extra: Localized | None = None,
        key: str | None = None,
        propagate: tuple[type[BaseException], ...] = (),
    ) -> bool:
        """A notice about a new case in its department's team room: reference,
        topic, the first message and a matrix.to link; ``extra`` is a last line
        in each language. German, with an English copy below when one of the
        department's staff reads English. False if there is no team room or it
        cannot be reached (the case itself is unaffected); errors of the
        ``propagate`` types in reaching it go to the caller."""
        department = self.config.department(case.department)
        if department is None or not department.team_room:
            return False
        room_id = await self.resolve(
            department.team_room,
            tuple(s.mxid for s in department.staff),
            propagate=propagate,
        )
        if room_id is None:
            return False
        burst = await self._burst(case)
        if burst:
            return await self._announce_burst(room_id, case, burst)
        readers = department.languages

        def lines(language: str) -> str:
            return "\n".join(self._case_lines(case, first_message, extra, language)[0])

        def markup(language: str) -> str:
            return "<br>".join(
                self._case_lines(case, first_message, extra, language)[1]
            )

        try:
            await self._notice(
                room_id,
                for_readers(lines, readers),
                for_readers(markup, readers, MARKUP_SEPARATOR),
                key,
                "team",
                case_id=case.case_id,
            )
        except HOMESERVER_ERRORS as e:
            log.warning("team notice for %s not posted: %s", case.reference, e)
            return False
        return True

    def _case_lines(
        self,
        case: Case,
        first_message: str | None,
        extra: Localized | None,
        language: str,
    ) -> tuple[list[str], list[str]]:
        """The notice of one case in ``language`` as plain lines and as HTML
        parts. The citizen's first message is quoted in the German one only:
        a copy in another language repeats no citizen text."""
        label = staff_text(STATE_LABELS.get(case.state, "team.new_case"), language)
        known = self.config.routing.topic(case.topic) if case.topic else None
        topic = known.label if known else (case.topic or None)
        topic = topic or staff_text("team.no_topic", language)
        name = case.citizen_name or staff_text("team.citizen", language)
        # The citizen reads everything in their language; staff should know it.
        spoken = (
            " · "
            + staff_text(
                "team.language", language, spoken=language_name(case.language, language)
            )
            if case.language != "de"
            else ""
        )
        lines = [f"{label}: {case.reference} · {topic} · {name}{spoken}"]
        markup = [
            f"<b>{html.escape(label)}: {html.escape(case.reference)}</b>"
            f" · {html.escape(topic)} · {html.escape(name)}{html.escape(spoken)}"
        ]
        if first_message and language == SOURCE:
            quoted = first_message.strip()
            if len(quoted) > FIRST_MESSAGE_QUOTE:
                quoted = quoted[: FIRST_MESSAGE_QUOTE - 1] + "…"
            lines.append(f"> {quoted}")
            markup.append(f"<blockquote>{html.escape(quoted)}</blockquote>")
        if extra is not None:
            lines.append(extra(language))
            markup.append(html.escape(extra(language)))
        if case.room_id:
            link = matrix_to(case.room_id, self.config.homeserver.server_name)
            to_case = staff_text("team.to_case", language)
            lines.append(f"{to_case}: {link}")
            markup.append(f'<a href="{html.escape(link)}">{html.escape(to_case)}</a>')
        return lines, markup

    async def _burst(self, case: Case) -> list[Case]:
        """The cases of this case's address in the last hour, if they are
        ``limits.burst_chats`` or more (else empty: an ordinary notice)."""
        if self.blocks is None or not case.client_key:
            return []
        since = as_utc(case.created_at) - BURST_WINDOW
        cases = await self.blocks.cases_since(case.client_key, since)
        return cases if len(cases) >= self.config.limits.burst_chats else []

    async def _announce_burst(
        self, room_id: str, case: Case, burst: list[Case]
    ) -> bool:
        """Held: one notice when an address reaches the burst size, naming its
        chats; later chats of the burst are not announced one by one."""
        if burst[self.config.limits.burst_chats - 1].case_id != case.case_id:
            return True  # summarised already
        refs = ", ".join(c.reference for c in burst)
        readers = self.readers(case.department)
        text = for_readers(
            lambda x: staff_text("team.burst", x, references=refs), readers
        )
        markup = for_readers(
            lambda x: html.escape(staff_text("team.burst", x, references=refs)),
            readers,
            MARKUP_SEPARATOR,
        )
        try:
            await self._notice(room_id, text, markup, f"burst:{case.case_id}", "team")
        except HOMESERVER_ERRORS as e:
            log.warning("burst notice for %s not posted: %s", case.reference, e)
            return False
        return True

    async def alert_admins(self, text: str, *, key: str | None = None) -> bool:
        """A notice in ``routing.admin_room``; always logged as a warning too."""
        log.warning("admin alert: %s", text)
        room = self.config.routing.admin_room
        if not room:
            return False
        room_id = await self.resolve(room, self.config.routing.admins)
        if room_id is None:
            return False
        try:
            await self._notice(
                room_id, f"⚠ {text}", f"⚠ {html.escape(text)}", key, "alert"
            )
        except HOMESERVER_ERRORS as e:
            log.warning("admin alert not posted: %s", e)
            return False
        return True
