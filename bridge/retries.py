"""The one backoff rule, and how a job says "not yet" or "never"."""

from __future__ import annotations

from datetime import timedelta


class RetryLater(Exception):
    """Not yet, and not a failure: run the job again after ``delay``."""

    def __init__(self, delay: timedelta, reason: str = "") -> None:
        super().__init__(reason or f"again in {delay}")
        self.delay = delay


class GiveUp(Exception):
    """This job can never succeed (the thing it works on is gone): park it."""


def backoff(
    attempt: int, *, base: timedelta, cap: timedelta, spread: float = 0.5
) -> timedelta:
    """The one backoff rule: after the ``attempt``-th failure wait
    base·2^(attempt−1), at most ``cap``, spread by ±20 % (``spread`` in [0, 1)
    picks where) so that jobs failing together do not retry in the same second."""
    seconds = min(base.total_seconds() * 2 ** max(attempt - 1, 0), cap.total_seconds())
    return timedelta(seconds=seconds * (0.8 + 0.4 * spread))
