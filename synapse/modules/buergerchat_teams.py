"""Synapse module: staff are members of their team room from the moment the
rules name them.

Why: routing counts only staff whose presence says ``online``, and Synapse shows
a user's presence only to users sharing a *joined* room with them. A staff
member invited to the team room but not yet joined (never logged in, or never
clicked the invite) is unknown to the bot and counts as offline, which is right
for someone who never logged in, but leaves a logged-in person invisible until
they accept. So the invite the bridge's bot sends to a team or admin room (a
room carrying the ``de.buergerchat.room`` state event the bot sets) is accepted
at once, on the server, the way Synapse's own ``auto_accept_invites`` does it,
but for these rooms only: invites to case rooms stay invites until a person
takes them, which is how staff say "I am here".

Enabled in homeserver.yaml (``buergerchat run`` renders it)::

    modules:
      - module: buergerchat_teams.BuergerchatTeams
        config:
          bot: "@buergerchat:musterstadt.example"
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from synapse.module_api import EventBase, ModuleApi

logger = logging.getLogger(__name__)

#: The state event the bridge sets in the rooms whose invites are accepted.
ROOM_MARKER = "de.buergerchat.room"
#: Room kinds (the marker's ``kind``) whose invites are accepted.
KINDS = ("team", "admins")
RETRIES = 5


class ConfigError(Exception):
    """The module's config in homeserver.yaml is wrong; the message names the key."""


@dataclass(frozen=True)
class TeamsConfig:
    bot: str


class BuergerchatTeams:
    def __init__(self, config: TeamsConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        api.register_third_party_rules_callbacks(on_new_event=self.on_new_event)
        # An invite can come before the account exists (SSO makes it at first
        # login; the demo makes staff after the rooms), or before this module
        # was enabled: at registration and at each login, pending team invites
        # are taken too.
        api.register_account_validity_callbacks(
            on_user_registration=self.join_pending,
            on_user_login=self.on_user_login,
        )

    @staticmethod
    def parse_config(config: dict[str, Any]) -> TeamsConfig:
        bot = config.get("bot")
        if not isinstance(bot, str) or not bot.startswith("@") or ":" not in bot:
            raise ConfigError("buergerchat_teams: 'bot' must be a Matrix user ID")
        return TeamsConfig(bot=bot)

    async def on_new_event(self, event: EventBase, *args: Any) -> None:
        if (
            event.type != "m.room.member"
            or not event.is_state()
            or event.membership != "invite"
            or event.sender != self._config.bot
            or not self._api.is_mine(event.state_key)
        ):
            return
        if not await self._marked(event.room_id):
            return
        user = await self._api.get_userinfo_by_id(event.state_key)
        if user is None or user.is_deactivated or user.locked or user.suspended:
            return
        # In the background: the invite is still being persisted right now.
        self._api.run_as_background_process(
            "buergerchat_team_join", self._join, event.state_key, event.room_id
        )

    async def on_user_login(
        self, user_id: str, auth_provider_type: str | None, auth_provider_id: str | None
    ) -> None:
        await self.join_pending(user_id)

    async def join_pending(self, user_id: str) -> None:
        """Take the bot's pending invites of ``user_id`` to team/admin rooms."""
        # No public module API lists a user's invites; this store method has
        # been stable for years (Synapse's own /sync uses it).
        store = self._api._store  # noqa: SLF001
        for room in await store.get_invited_rooms_for_local_user(user_id):
            if room.sender == self._config.bot and await self._marked(room.room_id):
                self._api.run_as_background_process(
                    "buergerchat_team_join", self._join, user_id, room.room_id
                )

    async def _marked(self, room_id: str) -> bool:
        state = await self._api.get_room_state(room_id, [(ROOM_MARKER, "")])
        marker = state.get((ROOM_MARKER, ""))
        # Set by the bot itself: staff may set state in case rooms, and a marker
        # of theirs must not make Synapse join colleagues who never accepted.
        return (
            marker is not None
            and marker.sender == self._config.bot
            and marker.content.get("kind") in KINDS
        )

    async def _join(self, user_id: str, room_id: str) -> None:
        for attempt in range(RETRIES):
            try:
                await self._api.update_room_membership(
                    sender=user_id,
                    target=user_id,
                    room_id=room_id,
                    new_membership="join",
                )
                logger.info("joined %s to team room %s", user_id, room_id)
                return
            except Exception as e:  # noqa: BLE001 - logged; retried a few times
                logger.warning(
                    "joining %s to %s failed (attempt %d): %s",
                    user_id,
                    room_id,
                    attempt + 1,
                    e,
                )
            await self._api.sleep(2**attempt)
