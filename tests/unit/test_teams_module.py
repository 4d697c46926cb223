"""The Synapse module that joins staff to their team rooms
(synapse/modules/buergerchat_teams.py), against a stand-in for Synapse's
ModuleApi: only the bot's invites, only into rooms the bot itself marked, only
local active accounts; pending invites at registration and login."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "synapse" / "modules"))

from buergerchat_teams import BuergerchatTeams  # noqa: E402

BOT = "@buergerchat:town.example"
ANNA = "@anna:town.example"


@dataclass
class Marker:
    sender: str
    content: dict[str, Any]


@dataclass
class Event:
    room_id: str
    state_key: str
    sender: str
    membership: str = "invite"
    type: str = "m.room.member"

    def is_state(self) -> bool:
        return True


@dataclass
class User:
    is_deactivated: bool = False
    locked: bool = False
    suspended: bool = False


@dataclass
class Invited:
    room_id: str
    sender: str


@dataclass
class FakeApi:
    markers: dict[str, Marker] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    invites: dict[str, list[Invited]] = field(default_factory=dict)
    joined: list[tuple[str, str]] = field(default_factory=list)

    def register_third_party_rules_callbacks(self, **kw: Any) -> None:
        pass

    def register_account_validity_callbacks(self, **kw: Any) -> None:
        pass

    def is_mine(self, user_id: str) -> bool:
        return user_id.endswith(":town.example")

    async def get_room_state(self, room_id: str, _filter: Any) -> dict[Any, Any]:
        marker = self.markers.get(room_id)
        return {("de.buergerchat.room", ""): marker} if marker else {}

    async def get_userinfo_by_id(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def run_as_background_process(self, _desc: str, func: Any, *args: Any) -> None:
        self._pending = func(*args)

    async def update_room_membership(self, **kw: Any) -> None:
        self.joined.append((kw["target"], kw["room_id"]))

    async def sleep(self, seconds: float) -> None:
        pass

    @property
    def _store(self) -> Any:
        api = self

        class Store:
            async def get_invited_rooms_for_local_user(self, user: str) -> Any:
                return api.invites.get(user, [])

        return Store()


async def invite(api: FakeApi, module: BuergerchatTeams, event: Event) -> None:
    api._pending = None  # type: ignore[attr-defined]
    await module.on_new_event(event)
    if api._pending is not None:  # type: ignore[attr-defined]
        await api._pending  # type: ignore[attr-defined]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(
        markers={
            "!team": Marker(BOT, {"kind": "team"}),
            "!forged": Marker(ANNA, {"kind": "team"}),  # a case room, staff's state
        },
        users={ANNA: User()},
    )


async def test_only_the_bots_invite_into_a_room_the_bot_marked(api: FakeApi) -> None:
    module = BuergerchatTeams(BuergerchatTeams.parse_config({"bot": BOT}), api)  # type: ignore[arg-type]
    await invite(api, module, Event("!team", ANNA, BOT))
    assert api.joined == [(ANNA, "!team")]
    for refused in (
        Event("!forged", ANNA, BOT),  # marker set by staff, not the bot
        Event("!case", ANNA, BOT),  # no marker: a case room
        Event("!team", ANNA, "@someone:town.example"),  # not the bot's invite
        Event("!team", "@eve:elsewhere.example", BOT),  # not a local user
        Event("!team", ANNA, BOT, membership="join"),
    ):
        await invite(api, module, refused)
    assert api.joined == [(ANNA, "!team")]
    api.users[ANNA] = User(is_deactivated=True)
    await invite(api, module, Event("!team", ANNA, BOT))
    assert api.joined == [(ANNA, "!team")]


async def test_pending_invites_are_taken_at_registration_and_login(
    api: FakeApi,
) -> None:
    module = BuergerchatTeams(BuergerchatTeams.parse_config({"bot": BOT}), api)  # type: ignore[arg-type]
    api.invites[ANNA] = [
        Invited("!team", BOT),
        Invited("!forged", BOT),
        Invited("!team2", "@someone:town.example"),
    ]
    api._pending = None  # type: ignore[attr-defined]
    await module.on_user_login(ANNA, None, None)
    await api._pending  # type: ignore[attr-defined]
    assert api.joined == [(ANNA, "!team")]


def test_the_config_needs_the_bots_id() -> None:
    with pytest.raises(Exception, match="bot"):
        BuergerchatTeams.parse_config({"bot": "buergerchat"})
