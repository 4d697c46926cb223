"""An in-process stand-in for Synapse, at the level of mautrix's IntentAPI: rooms
with members, power levels, state, a timeline, aliases, presence and media, kept
in memory. Every call is recorded, and ``down = True`` makes every call fail as
an unreachable Synapse does (``ClientConnectionError``).

It serves the unit tests of the core and the bots (``tests/harness.py``); the e2e
tests use the real Synapse. Only what the bridge calls is here — a call it does
not know fails loudly (AttributeError), so a new call needs a line here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import ClientConnectionError
from mautrix.errors import MForbidden, MNotFound
from mautrix.types import (
    ContentURI,
    EventID,
    PowerLevelStateEventContent,
    PresenceEventContent,
    PresenceState,
    RoomAliasInfo,
    RoomID,
    UserID,
)


@dataclass
class Room:
    room_id: str
    creator: str
    alias: str | None
    members: dict[str, str] = field(default_factory=dict)  # mxid → membership
    power: dict[str, int] = field(default_factory=dict)
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None


class FakeHomeserver:
    def __init__(self, server_name: str = "test.example") -> None:
        self.server_name = server_name
        self.rooms: dict[str, Room] = {}
        self.aliases: dict[str, str] = {}
        self.displaynames: dict[str, str] = {}
        self.registered: set[str] = set()
        #: Presence by mxid; someone not listed is not visible to the bot.
        self.presence: dict[str, str] = {}
        #: room id -> user -> the last typing timeout set (0: stopped)
        self.typing: dict[str, dict[str, int]] = {}
        self.media: dict[str, bytes] = {}
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.down = False
        self._ids = itertools.count(1)
        self._txns: dict[tuple[str, str], str] = {}

    def intent(self, mxid: str) -> FakeIntent:
        return FakeIntent(self, mxid)

    # --- for the tests ----------------------------------------------------------

    def messages(self, room_id: str, sender: str | None = None) -> list[dict[str, Any]]:
        """The room's m.room.message contents, oldest first (of ``sender``)."""
        return [
            e["content"]
            for e in self.rooms[room_id].timeline
            if e["type"] == "m.room.message" and sender in (None, e["sender"])
        ]

    def room_of_alias(self, localpart: str) -> Room:
        return self.rooms[self.aliases[f"#{localpart}:{self.server_name}"]]

    # --- the homeserver's side --------------------------------------------------

    def _call(self, who: str, name: str, *args: Any) -> None:
        self.calls.append((who, name, args))
        if self.down:
            raise ClientConnectionError("fake Synapse is down")

    def _new_id(self, sigil: str) -> str:
        return f"{sigil}{next(self._ids)}:{self.server_name}"

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(str(room_id))
        if room is None:
            raise MNotFound(404, f"no room {room_id}")
        return room

    def _append(
        self, room: Room, sender: str, type: str, content: dict[str, Any], **more: Any
    ) -> str:
        event_id = f"${next(self._ids)}"
        room.timeline.append(
            {
                "event_id": event_id,
                "room_id": room.room_id,
                "sender": sender,
                "type": type,
                "content": content,
                "origin_server_ts": 1_800_000_000_000 + len(room.timeline) * 1000,
                **more,
            }
        )
        return event_id


class _Api:
    """``intent.api.request``: the raw calls the bridge makes (/messages, and
    /typing through ClientAPI.set_typing, which never joins)."""

    def __init__(self, hs: FakeHomeserver, mxid: str) -> None:
        self.hs, self.mxid = hs, mxid

    async def request(
        self, method: Any, path: str, content: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        path = str(path)
        self.hs._call(self.mxid, "request", str(method), path)
        if "/typing/" in path:
            room_id = unquote(path.split("/rooms/", 1)[1].split("/", 1)[0])
            timeout = int(content.get("timeout", 0)) if content.get("typing") else 0
            self.hs.typing.setdefault(room_id, {})[self.mxid] = timeout
            return {}
        if path.endswith("/messages"):
            room_id = unquote(path.split("/rooms/", 1)[1].split("/", 1)[0])
            room = self.hs._room(room_id)
            start = int((kwargs.get("query_params") or {}).get("from") or 0)
            chunk = room.timeline[start : start + 100]
            end = start + len(chunk)
            return {"chunk": chunk, "end": str(end) if chunk else None}
        if "/state/" in path and str(method).upper().endswith("GET"):
            return self._state(path, kwargs.get("query_params") or {})
        raise NotImplementedError(f"fake homeserver: {method} {path}")

    def _state(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        """GET …/state/{type}/{key} (with ``format=event``: the whole event)."""
        room_id, _, rest = unquote(path.split("/rooms/", 1)[1]).partition("/")
        _, _, wanted = rest.partition("state/")
        kind, _, key = wanted.partition("/")
        for event in reversed(self.hs._room(room_id).timeline):
            if (event["type"], event.get("state_key")) == (kind, key):
                return (
                    dict(event) if query.get("format") == "event" else event["content"]
                )
        raise MNotFound(404, f"no state {kind}/{key} in {room_id}")


class FakeIntent:
    def __init__(self, hs: FakeHomeserver, mxid: str) -> None:
        self.hs = hs
        self.mxid = UserID(mxid)
        self.api = _Api(hs, mxid)

    def user(self, mxid: str) -> FakeIntent:
        return FakeIntent(self.hs, mxid)

    async def ensure_registered(self) -> None:
        self.hs._call(self.mxid, "ensure_registered")
        self.hs.registered.add(self.mxid)

    async def set_displayname(self, name: str, check_current: bool = True) -> None:
        self.hs._call(self.mxid, "set_displayname", name)
        self.hs.displaynames[self.mxid] = name

    async def create_room(
        self,
        alias_localpart: str | None = None,
        invitees: list[str] | None = None,
        name: str | None = None,
        power_level_override: Any = None,
        **kwargs: Any,
    ) -> RoomID:
        self.hs._call(self.mxid, "create_room", alias_localpart)
        alias = f"#{alias_localpart}:{self.hs.server_name}" if alias_localpart else None
        if alias and alias in self.hs.aliases:
            from mautrix.errors import MRoomInUse

            raise MRoomInUse(400, "alias taken")
        room = Room(self.hs._new_id("!"), self.mxid, alias, name=name)
        room.members[self.mxid] = "join"
        room.power[self.mxid] = 100
        users = (power_level_override or {}).get("users") or {}
        room.power.update({str(k): int(v) for k, v in users.items()})
        if kwargs.get("topic"):
            room.state[("m.room.topic", "")] = {"topic": kwargs["topic"]}
        for state in kwargs.get("initial_state") or []:
            room.state[(state["type"], state.get("state_key", ""))] = state["content"]
        for mxid in invitees or []:
            room.members[str(mxid)] = "invite"
        self.hs.rooms[room.room_id] = room
        if alias:
            self.hs.aliases[alias] = room.room_id
        return RoomID(room.room_id)

    async def resolve_room_alias(self, alias: str) -> RoomAliasInfo:
        self.hs._call(self.mxid, "resolve_room_alias", alias)
        room_id = self.hs.aliases.get(str(alias))
        if room_id is None:
            raise MNotFound(404, f"no alias {alias}")
        return RoomAliasInfo(room_id=RoomID(room_id), servers=[self.hs.server_name])

    async def invite_user(
        self, room_id: str, user_id: str, *args: Any, **kw: Any
    ) -> None:
        self.hs._call(self.mxid, "invite_user", room_id, user_id)
        room = self.hs._room(room_id)
        if room.members.get(str(user_id)) != "join":
            room.members[str(user_id)] = "invite"

    async def ensure_joined(self, room_id: str, *args: Any, **kw: Any) -> bool:
        self.hs._call(self.mxid, "ensure_joined", room_id)
        room = self.hs._room(room_id)
        if room.members.get(self.mxid) != "join":
            room.members[self.mxid] = "join"
            self.hs._append(
                room,
                self.mxid,
                "m.room.member",
                {"membership": "join"},
                state_key=self.mxid,
            )
        return True

    async def join_room(self, room_id: str, *args: Any, **kw: Any) -> RoomID:
        await self.ensure_joined(room_id)
        return RoomID(room_id)

    async def leave_room(self, room_id: str, *args: Any, **kw: Any) -> None:
        self.hs._call(self.mxid, "leave_room", room_id)
        self.hs._room(room_id).members[self.mxid] = "leave"

    async def kick_user(self, room_id: str, user_id: str, reason: str = "") -> None:
        self.hs._call(self.mxid, "kick_user", room_id, user_id)
        self.hs._room(room_id).members[str(user_id)] = "leave"

    async def get_room_members(
        self, room_id: str, allowed_memberships: Any = ("join",), **kw: Any
    ) -> list[UserID]:
        self.hs._call(self.mxid, "get_room_members", room_id)
        room = self.hs._room(room_id)
        wanted = {str(getattr(m, "value", m)) for m in allowed_memberships}
        return [UserID(m) for m, state in room.members.items() if state in wanted]

    async def get_power_levels(self, room_id: str, *args: Any, **kw: Any) -> Any:
        self.hs._call(self.mxid, "get_power_levels", room_id)
        room = self.hs._room(room_id)
        return PowerLevelStateEventContent(users=dict(room.power))

    async def set_power_levels(self, room_id: str, content: Any, **kw: Any) -> EventID:
        self.hs._call(self.mxid, "set_power_levels", room_id)
        room = self.hs._room(room_id)
        room.power = {str(k): int(v) for k, v in content.users.items()}
        return EventID(self.hs._append(room, self.mxid, "m.room.power_levels", {}))

    async def send_message_event(
        self,
        room_id: str,
        event_type: Any,
        content: Any,
        txn_id: str | None = None,
        **kw: Any,
    ) -> EventID:
        self.hs._call(self.mxid, "send_message_event", room_id, str(event_type))
        room = self.hs._room(room_id)
        if room.members.get(self.mxid) != "join":
            raise MForbidden(403, f"{self.mxid} is not in {room_id}")
        key = (self.mxid, txn_id or "")
        if txn_id and key in self.hs._txns:
            return EventID(self.hs._txns[key])  # Synapse's txn-id idempotency
        body = content.serialize() if hasattr(content, "serialize") else dict(content)
        event_id = self.hs._append(room, self.mxid, str(event_type), body)
        if txn_id:
            self.hs._txns[key] = event_id
        return EventID(event_id)

    async def get_state_event(
        self, room_id: str, event_type: Any, state_key: str = ""
    ) -> Any:
        self.hs._call(self.mxid, "get_state_event", room_id, str(event_type))
        room = self.hs._room(room_id)
        found = room.state.get((str(event_type), state_key))
        if found is None:
            from mautrix.errors import MNotFound

            raise MNotFound(404, "Event not found.")
        return found

    async def send_state_event(
        self,
        room_id: str,
        event_type: Any,
        content: Any,
        state_key: str = "",
        **kw: Any,
    ) -> EventID:
        self.hs._call(self.mxid, "send_state_event", room_id, str(event_type))
        room = self.hs._room(room_id)
        body = content.serialize() if hasattr(content, "serialize") else dict(content)
        for e in reversed(room.timeline):
            if (e["type"], e.get("state_key")) == (str(event_type), state_key):
                if e["sender"] == self.mxid and e["content"] == body:
                    # Synapse does not persist a state event that repeats the
                    # current one of the same sender (deduplicate_state_event).
                    return EventID(e["event_id"])
                break
        room.state[(str(event_type), state_key)] = body
        return EventID(
            self.hs._append(room, self.mxid, str(event_type), body, state_key=state_key)
        )

    async def redact(
        self, room_id: str, event_id: str, reason: str | None = None
    ) -> EventID:
        self.hs._call(self.mxid, "redact", room_id, event_id)
        room = self.hs._room(room_id)
        for event in room.timeline:
            if event["event_id"] == event_id:
                event["content"] = {}
        return EventID(self.hs._append(room, self.mxid, "m.room.redaction", {}))

    async def get_presence(self, user_id: str) -> PresenceEventContent:
        self.hs._call(self.mxid, "get_presence", user_id)
        state = self.hs.presence.get(str(user_id))
        if state is None:
            raise MForbidden(403, "not sharing a room")
        return PresenceEventContent(presence=PresenceState(state))

    async def upload_media(self, data: bytes, *args: Any, **kw: Any) -> ContentURI:
        self.hs._call(self.mxid, "upload_media")
        uri = f"mxc://{self.hs.server_name}/m{next(self.hs._ids)}"
        self.hs.media[uri] = bytes(data)
        return ContentURI(uri)

    async def download_media(self, url: str, *args: Any, **kw: Any) -> bytes:
        self.hs._call(self.mxid, "download_media", url)
        if str(url) not in self.hs.media:
            raise MNotFound(404, "no such media")
        return self.hs.media[str(url)]


class FakeSynapseAdmin:
    """Synapse's admin API as the privacy service uses it, on the fake
    homeserver: rooms deleted, media deleted, users erased, notices pruned."""

    def __init__(self, hs: FakeHomeserver) -> None:
        self.hs = hs
        self.url = "http://fake-synapse"
        self.erased: list[str] = []
        self.censored: list[str] = []
        self.compacted = 0

    def _check(self, name: str, *args: Any) -> None:
        from bridge.synapse_admin import AdminCallFailed

        self.hs.calls.append(("admin", name, args))
        if self.hs.down:
            raise AdminCallFailed("fake Synapse is down")

    async def room_media(self, room_id: str) -> list[str]:
        self._check("room_media", room_id)
        room = self.hs.rooms.get(room_id)
        if room is None:
            return []
        return [
            str(e["content"]["url"])
            for e in room.timeline
            if isinstance(e.get("content"), dict) and "url" in e["content"]
        ]

    async def delete_room(self, room_id: str) -> str:
        self._check("delete_room", room_id)
        self.hs.rooms.pop(room_id, None)
        return "complete"

    async def delete_media(self, mxc: str) -> bool:
        self._check("delete_media", mxc)
        return self.hs.media.pop(mxc, None) is not None

    async def download_media(self, mxc: str) -> bytes | None:
        self._check("download_media", mxc)
        return self.hs.media.get(mxc)

    async def erase_user(self, user_id: str) -> bool:
        self._check("erase_user", user_id)
        self.erased.append(user_id)
        self.hs.displaynames.pop(user_id, None)
        return user_id in self.hs.registered

    async def censor(self, event_ids: list[str]) -> int:
        self._check("censor", event_ids)
        found = 0
        for room in self.hs.rooms.values():
            for event in room.timeline:
                if event["event_id"] in event_ids:
                    event["content"] = {}
                    found += 1
        self.censored.extend(event_ids)
        return found

    async def compact(self) -> None:
        self._check("compact")
        self.compacted += 1
