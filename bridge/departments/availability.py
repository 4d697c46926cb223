"""Who a citizen would reach right now, per department: the one answer that
``GET /status`` shows and ``POST /cases`` acts on.

The routing bot computes it (presence, open cases, the fallback chain); the
core only shows it. Four states:

``available``
    within office hours and someone is free: a new chat goes live at once;
``busy``
    within office hours, people are online but all at their limit: a new chat
    waits in the queue (``wait_minutes`` for the next place);
``nobody_online``
    within office hours but nobody is online (or their presence is unknown):
    a citizen can leave a message, not chat;
``closed``
    outside office hours (``next_opening``): a message, not a chat.

``served_by`` names another department when the fallback chain would take the
chat (the requested one is not staffed): the citizen is told before and after
starting, and may leave a message for the requested department instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

AvailabilityState = Literal["available", "busy", "nobody_online", "closed"]

#: The states in which a new chat reaches a person (now or after a wait).
CHAT_STATES = ("available", "busy")


@dataclass(frozen=True)
class Availability:
    state: AvailabilityState
    #: Who takes a chat started now: the department itself or a fallback.
    department: str
    #: Office hours: end of the current live time / the next opening.
    until: datetime | None = None
    next_opening: datetime | None = None
    #: ``busy``: estimated wait in minutes for the next place in the queue.
    wait_minutes: int | None = None

    @property
    def chat(self) -> bool:
        """A chat started now reaches a person (at once or after a wait)."""
        return self.state in CHAT_STATES

    def served_by(self, requested: str) -> str | None:
        """The fallback department that takes the chat, if not ``requested``."""
        return self.department if self.department != requested else None

    def as_json(self, requested: str, name: Callable[[str], str]) -> dict[str, Any]:
        by = self.served_by(requested)
        return {
            "state": self.state,
            "wait_minutes": self.wait_minutes,
            "served_by": {"id": by, "name": name(by)} if by else None,
        }
