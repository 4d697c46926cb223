"""What an action was caused by, so that doing it again makes the same keys.

The appservice inbox delivers an event at least once (a crash in the middle of a
handler means the event is worked off again). Sends, timeline entries and mails
made while a handler runs take their idempotency key from its cause (the event
id and the handler's place) and a counter, so the second run finds the first
run's work and adds nothing. Outside a handler (an API request, a timer) callers
give explicit keys; where none is given the key is random, which still makes the
stored send durable, but not a repeated cause idempotent.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class _Cause:
    key: str
    counters: dict[str, itertools.count[int]] = field(default_factory=dict)

    def next(self, kind: str) -> int:
        return next(self.counters.setdefault(kind, itertools.count(1)))


_current: ContextVar[_Cause | None] = ContextVar("buergerchat_cause", default=None)


@contextmanager
def caused_by(key: str | None) -> Iterator[None]:
    """Run the block with ``key`` as its cause (None: no cause)."""
    token = _current.set(_Cause(key) if key else None)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> str | None:
    """The key of the cause being worked off (None outside any)."""
    cause = _current.get()
    return cause.key if cause is not None else None


def derived_key(kind: str) -> str | None:
    """``<kind>:<cause>#<n>`` for the n-th such action of this cause, or None
    outside any cause."""
    cause = _current.get()
    if cause is None:
        return None
    return f"{kind}:{cause.key}#{cause.next(kind)}"


def key_for(kind: str, explicit: str | None = None) -> str:
    """An explicit key, else one derived from the cause, else a random one."""
    return explicit or derived_key(kind) or f"{kind}:r-{secrets.token_urlsafe(12)}"
