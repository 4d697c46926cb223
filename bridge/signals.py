"""Who is typing and how far staff have read, per case: the small signs that
someone is there ("Anna schreibt …", "gelesen").

Synapse pushes typing notifications and read receipts of the case rooms to the
appservice as ephemeral events (MSC2409, ``receive_ephemeral`` in the
registration); they are kept in memory only, as Synapse keeps them: a lost
typing notice is harmless, and a receipt is sent again as staff read on. The
citizen API returns them with each batch of events, and a change wakes the
long poll. The other way, the widget's typing becomes the ghost's typing.

With several bridge processes, a process answers only with the signals it
received itself (Synapse sends each transaction to one address).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .case import CaseService

log = logging.getLogger("buergerchat.signals")

#: A typing notice Synapse never ended (it ends them itself after their timeout)
#: is dropped after this many seconds.
TYPING_AT_MOST = 30.0


@dataclass
class _CaseSignals:
    typing: dict[str, float] = field(default_factory=dict)  # name -> until
    read: int = 0
    version: int = 0


class Signals:
    def __init__(
        self, cases: CaseService, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cases = cases
        self.clock = clock
        self._by_case: dict[str, _CaseSignals] = {}

    def current(self, case_id: str) -> dict[str, Any]:
        """What the citizen API adds to an events answer."""
        found = self._by_case.get(case_id) or _CaseSignals()
        now = self.clock()
        return {
            "typing": sorted(n for n, until in found.typing.items() if until > now),
            "read": str(found.read) if found.read else None,
            "signals": found.version,
        }

    def version(self, case_id: str) -> int:
        found = self._by_case.get(case_id)
        return found.version if found else 0

    def _changed(self, case_id: str, signals: _CaseSignals) -> None:
        signals.version += 1
        # Each process keeps its own signals: Synapse's typing notices and
        # receipts reach the others as they are (bridge.peers).
        self.cases.notifier.notify(case_id, here_only=True)

    # --- from Synapse -------------------------------------------------------------

    async def handle(self, edu: Mapping[str, Any]) -> None:
        """One ephemeral event of a transaction (m.typing, m.receipt)."""
        room_id = edu.get("room_id")
        kind = edu.get("type")
        if not isinstance(room_id, str) or kind not in ("m.typing", "m.receipt"):
            return
        case = await self.cases.store.case_by_room(room_id)
        if case is None or case.closed_at is not None:
            return
        content = edu.get("content") or {}
        if kind == "m.typing":
            self._typing(case.case_id, room_id, content.get("user_ids") or [])
        else:
            await self._receipt(case.case_id, content)

    def _typing(self, case_id: str, room_id: str, user_ids: Iterable[Any]) -> None:
        staff = self.cases.config.all_staff()
        names = {
            self.cases.staff_name(room_id, str(u)) for u in user_ids if str(u) in staff
        }
        signals = self._by_case.setdefault(case_id, _CaseSignals())
        until = self.clock() + TYPING_AT_MOST
        same = set(signals.typing) == names
        signals.typing = {name: until for name in names}  # refreshed either way
        if not same:
            self._changed(case_id, signals)

    async def _receipt(self, case_id: str, content: Mapping[str, Any]) -> None:
        staff = self.cases.config.all_staff()
        read_by_staff = [
            event_id
            for event_id, kinds in content.items()
            if isinstance(kinds, Mapping)
            and any(
                str(user) in staff
                for receipts in kinds.values()
                if isinstance(receipts, Mapping)
                for user in receipts
            )
        ]
        seq = await self.cases.store.seq_of(case_id, read_by_staff)
        signals = self._by_case.setdefault(case_id, _CaseSignals())
        if seq is None or seq <= signals.read:
            return
        signals.read = seq
        self._changed(case_id, signals)

    def forget(self, case_id: str) -> None:
        self._by_case.pop(case_id, None)
