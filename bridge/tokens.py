"""Citizen bearer tokens: random, stored only as SHA-256, expiring."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_case_id() -> str:
    """Public, unguessable case id for URLs (the reference is for humans)."""
    return "c_" + secrets.token_urlsafe(16)
