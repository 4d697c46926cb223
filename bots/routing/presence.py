"""Staff presence as routing needs it: what Synapse says, and anything unknown
counted as offline (a citizen must never be promised someone who may not be
there)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mautrix.errors import MForbidden
from mautrix.types import UserID

from bridge.departments.model import Department
from bridge.errors import HOMESERVER_ERRORS

if TYPE_CHECKING:
    from bridge.case import CaseService
    from bridge.config import Config

log = logging.getLogger("buergerchat.routing")

PRESENCE_TIMEOUT = 5.0


class Presence:
    def __init__(self, config: Config, cases: CaseService) -> None:
        self.config = config
        self.cases = cases
        self._unseen: set[str] = set()

    async def of(self, departments: Iterable[Department]) -> dict[str, str] | None:
        """Presence per staff member, or None when ``routing.use_presence`` is off
        (then everyone counts as online)."""
        if not self.config.routing.use_presence:
            return None
        mxids = list(dict.fromkeys(s.mxid for d in departments for s in d.staff))
        states = await asyncio.gather(*(self._presence_of(m) for m in mxids))
        return dict(zip(mxids, states, strict=True))

    async def _presence_of(self, mxid: str) -> str:
        """What Synapse says of ``mxid``; anything unknown counts as offline: a
        citizen must never be promised someone who may not be there."""
        intent = self.cases.az.intent
        try:
            content = await asyncio.wait_for(
                intent.get_presence(UserID(mxid)), PRESENCE_TIMEOUT
            )
        except MForbidden:
            # Synapse shows presence only to users sharing a joined room; staff
            # are joined to their team room as soon as the rules name them
            # (synapse/modules/buergerchat_teams.py), so this is someone who
            # left it, or whose account does not exist yet.
            if mxid not in self._unseen:
                self._unseen.add(mxid)
                log.warning(
                    "presence of %s not visible (not in their team room); "
                    "counted as offline",
                    mxid,
                )
            return "offline"
        except HOMESERVER_ERRORS as e:
            log.warning("presence of %s unknown (%s); counted as offline", mxid, e)
            return "offline"
        self._unseen.discard(mxid)
        state = content.presence
        return str(getattr(state, "value", state))
