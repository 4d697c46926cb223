"""Offline messages: left outside the live hours, forwarded to the department by
e-mail and in Matrix, answered later through a personal link (issue #4)."""

from __future__ import annotations

from .bot import OfflineBot

__all__ = ["OfflineBot"]
