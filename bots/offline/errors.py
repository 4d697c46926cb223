"""Errors of the offline path, in the product's one error shape; their codes and
statuses are entries of bridge.errors.CATALOGUE."""

from __future__ import annotations

from bridge.errors import BuergerchatError


class LinkExpired(BuergerchatError):
    """A personal link from an e-mail that ran out; a new message is the way on."""

    errcode = "BC_LINK_EXPIRED"


class NotQueued(BuergerchatError):
    """Only a chat still waiting in the queue can become an offline message."""

    errcode = "BC_NOT_QUEUED"


class ClientIdReused(BuergerchatError):
    """The client id belongs to another message; the widget must make a new one."""

    errcode = "BC_CLIENT_ID_REUSED"
