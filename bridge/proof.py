"""Proof of work for the anonymous entry points under unusual load (ALTCHA).

Ordinarily nobody solves anything. When one address has opened more than
``limits.proof_after_per_address`` chats and offline messages, or the whole
service more than ``limits.proof_after_total``, a new chat or offline message
is answered ``428 BC_PROOF_REQUIRED`` with a challenge; the widget solves it in
the background (the altcha-lib solver, about a second on a phone) and sends the
same request again with the solution in ``X-Buergerchat-Proof``. No third party,
no cookie, nothing to see or hear: the work is what makes a flood expensive.

Challenges and solutions are ALTCHA v2 (SHA-256 key derivation, a hex prefix of
``limits.proof_difficulty`` zeros), made and checked with the ``altcha`` library,
signed with a secret of the installation, valid for five minutes, for one
purpose ("chat", "offline"), and accepted once.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from typing import Any

import altcha

from .clock import utcnow
from .errors import ProofRequired

HEADER = "X-Buergerchat-Proof"
VALID_FOR = timedelta(minutes=5)


class Proofs:
    def __init__(self, secret: str, difficulty: int) -> None:
        self._secret = secret
        self.prefix = "0" * difficulty
        self._used: dict[str, float] = {}

    def challenge(self, purpose: str) -> dict[str, Any]:
        made = altcha.create_challenge(
            "SHA-256",
            1,
            key_prefix=self.prefix,
            hmac_secret=self._secret,
            expires_at=utcnow() + VALID_FOR,
            data={"purpose": purpose},
        )
        return dict(made.to_dict())

    def require(self, purpose: str, why: str) -> ProofRequired:
        return ProofRequired(self.challenge(purpose), why)

    def accept(self, header: str, purpose: str) -> bool:
        """True for a valid, unexpired, unused solution of a challenge of ours
        for ``purpose``; it cannot be used again."""
        try:
            payload = json.loads(base64.b64decode(header, validate=True))
            challenge = payload["challenge"]
            data = challenge["parameters"].get("data") or {}
            signature = str(challenge["signature"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return False
        if data.get("purpose") != purpose or signature in self._used:
            return False
        result = altcha.verify_solution(header, self._secret, altcha.derive_key_sha)
        if not result.verified:
            return False
        now = utcnow().timestamp()
        self._used = {s: t for s, t in self._used.items() if t > now}
        self._used[signature] = now + VALID_FOR.total_seconds()
        return True
