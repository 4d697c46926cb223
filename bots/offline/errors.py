"""Errors of the offline path, in the product's one error shape; their codes and
statuses are entries of bridge.errors.CATALOGUE."""

from __future__ import annotations

from bridge.errors import BuergerchatError, LinkExpired

__all__ = ["ClientIdReused", "LinkExpired", "NotQueued"]


class NotQueued(BuergerchatError):
    """Only a chat still waiting in the queue can become an offline message."""

    errcode = "BC_NOT_QUEUED"


class ClientIdReused(BuergerchatError):
    """The client id belongs to another message; the widget must make a new one."""

    errcode = "BC_CLIENT_ID_REUSED"
