"""Synapse module: erased means erased, in Synapse's own files too.

The bridge erases a case through Synapse's admin API (room deleted with purge,
media deleted, the citizen's ghost deactivated and erased). Three things that
API leaves behind are handled here, for the bridge's admin account only:

- **Free pages.** With SQLite (the embedded default) deleted rows stay in the
  database file until the space is reused. This module turns on
  ``PRAGMA secure_delete`` for Synapse's one SQLite connection, so deleted
  content is overwritten at once, and ``POST …/compact`` truncates the
  write-ahead log (which still holds old pages) and merges the full-text
  indexes (whose deleted terms stay in old segments until a merge).
  PostgreSQL: nothing to do here (deleted rows are not readable; VACUUM frees
  the space as usual).
- **Notices in other rooms.** The bridge's notice about a new case in a team
  room quotes the citizen. The bridge redacts it; a redacted event's content
  stays in Synapse for ``redaction_retention_period``. ``POST …/censor`` with
  ``{"event_ids": [...]}`` prunes those events now, the way Synapse does when
  that period ends (only events the calling admin's bridge sent: the
  ``sender`` must be the configured bot).

Enabled in homeserver.yaml (``buergerchat run`` renders it)::

    modules:
      - module: buergerchat_privacy.BuergerchatPrivacy
        config:
          bot: "@buergerchat:musterstadt.example"
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import (
    DirectServeJsonResource,
    ModuleApi,
    parse_json_object_from_request,
)
from synapse.storage.engines import Sqlite3Engine

logger = logging.getLogger(__name__)
PREFIX = "/_synapse/client/buergerchat"
#: Full-text tables Synapse keeps on SQLite (FTS4): merged after an erasure.
FTS_TABLES = ("event_search", "user_directory_search")
MAX_EVENTS = 1000


class ConfigError(Exception):
    """The module's config in homeserver.yaml is wrong; the message names the key."""


@dataclass(frozen=True)
class PrivacyConfig:
    bot: str


class BuergerchatPrivacy:
    def __init__(self, config: PrivacyConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        # The one way to the stores: the module API has no call for pruning an
        # event or for a maintenance statement (pinned Synapse, tested e2e).
        self._store = api._hs.get_datastores().main  # noqa: SLF001
        self._sqlite = isinstance(self._store.database_engine, Sqlite3Engine)
        api.register_web_resource(f"{PREFIX}/censor", _Endpoint(self, self.censor))
        api.register_web_resource(f"{PREFIX}/compact", _Endpoint(self, self.compact))
        if self._sqlite:
            api._hs.get_reactor().callWhenRunning(self._secure_delete_soon)  # noqa: SLF001

    @staticmethod
    def parse_config(config: dict[str, Any]) -> PrivacyConfig:
        bot = config.get("bot")
        if not isinstance(bot, str) or not bot.startswith("@") or ":" not in bot:
            raise ConfigError("buergerchat_privacy: 'bot' must be a Matrix user ID")
        return PrivacyConfig(bot=bot)

    def _secure_delete_soon(self) -> None:
        from twisted.internet import defer

        defer.ensureDeferred(self._secure_delete())

    async def _secure_delete(self) -> None:
        # SQLite: Synapse keeps exactly one connection (cp_min = cp_max = 1);
        # compact sets it again, in case the pool reconnected.
        try:
            await self._api.run_db_interaction(
                "buergerchat_secure_delete", _pragma, "PRAGMA secure_delete = ON"
            )
        except Exception:
            logger.exception("could not turn on secure_delete")

    async def censor(self, body: dict[str, Any]) -> dict[str, Any]:
        event_ids = body.get("event_ids")
        if (
            not isinstance(event_ids, list)
            or len(event_ids) > MAX_EVENTS
            or not all(isinstance(e, str) and e.startswith("$") for e in event_ids)
        ):
            raise SynapseError(
                400,
                f"'event_ids' must be a list of up to {MAX_EVENTS} event IDs",
                Codes.BAD_JSON,
            )
        censored, missing = [], []
        for event_id in event_ids:
            event = await self._store.get_event(event_id, allow_none=True)
            if event is None:
                missing.append(event_id)
                continue
            if event.sender != self._config.bot:
                raise SynapseError(
                    403,
                    f"{event_id} was not sent by {self._config.bot}",
                    Codes.FORBIDDEN,
                )
            await self._store.expire_event(event_id)
            censored.append(event_id)
        return {"censored": censored, "missing": missing}

    async def compact(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self._sqlite:
            return {"compacted": False, "reason": "not sqlite"}
        await self._secure_delete()
        for table in FTS_TABLES:
            await self._api.run_db_interaction(
                "buergerchat_fts_optimize", _optimize, table
            )
        busy = await self._api.run_db_interaction(
            "buergerchat_checkpoint", _pragma, "PRAGMA wal_checkpoint(TRUNCATE)"
        )
        return {"compacted": True, "checkpoint": busy}


def _pragma(txn: Any, statement: str) -> list[Any]:
    txn.execute(statement)
    return [list(row) for row in txn.fetchall()]


def _optimize(txn: Any, table: str) -> None:
    try:
        txn.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")
    except sqlite3.OperationalError as e:  # no such table (an older schema)
        logger.info("optimize of %s skipped: %s", table, e)


class _Endpoint(DirectServeJsonResource):
    """POST with an admin's access token; answers JSON."""

    def __init__(self, module: BuergerchatPrivacy, action: Any) -> None:
        super().__init__()
        self._module = module
        self._action = action

    async def _async_render_POST(self, request: Any) -> tuple[int, dict[str, Any]]:
        api = self._module._api
        requester = await api.get_user_by_req(request)
        if not await api.is_user_admin(requester.user.to_string()):
            raise SynapseError(403, "Only a server admin may do this", Codes.FORBIDDEN)
        body = parse_json_object_from_request(request, allow_empty_body=True)
        return 200, await self._action(body)
