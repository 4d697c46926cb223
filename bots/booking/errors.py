"""Errors of the virtual citizen office, in the product's one error shape; their
codes and statuses are entries of bridge.errors.CATALOGUE."""

from __future__ import annotations

from bridge.errors import BuergerchatError


class SlotTaken(BuergerchatError):
    """Someone else booked the time first (409): the widget offers others."""

    errcode = "BC_SLOT_TAKEN"


class NotBooked(BuergerchatError):
    """Cancelled, missed, or already in the call (409)."""

    errcode = "BC_NOT_BOOKED"


class TooEarly(BuergerchatError):
    """The waiting room is not open yet (425, with ``opens_at``)."""

    errcode = "BC_TOO_EARLY"


class ClientIdReused(BuergerchatError):
    """The client_id belongs to another booking (409): make a new one."""

    errcode = "BC_CLIENT_ID_REUSED"


class NoWalkIn(BuergerchatError):
    """Nobody is free soon for a walk-in (409, with the next free slot)."""

    errcode = "BC_NO_WALK_IN"
