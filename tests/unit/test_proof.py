"""The proof of work below the e2e layer: a challenge of ours, solved, is taken
once and for its purpose only; an expired or altered one is not; the limits ask
for it only beyond the usual load."""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import timedelta
from typing import Any
from unittest.mock import Mock

import altcha
import pytest
from aiohttp.test_utils import make_mocked_request

from bridge.clock import FakeClock, use_clock, utcnow
from bridge.errors import ProofRequired
from bridge.limits import DEFAULT_RULES, Limits, LimitSettings
from bridge.proof import HEADER, Proofs


def solve(challenge: dict[str, Any], tamper: bool = False) -> str:
    found = altcha.solve_challenge(
        altcha.Challenge.from_dict(challenge), altcha.derive_key_sha
    )
    assert found is not None
    solution = found.to_dict()
    if tamper:
        solution["counter"] += 1
    payload = {"challenge": challenge, "solution": solution}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_a_solution_counts_once_and_for_its_purpose() -> None:
    proofs = Proofs("secret", difficulty=2)
    challenge = proofs.challenge("chat")
    assert challenge["parameters"]["keyPrefix"] == "00"
    proof = solve(challenge)
    assert not proofs.accept(proof, "offline")
    assert proofs.accept(proof, "chat")
    assert not proofs.accept(proof, "chat")  # replayed


def test_altered_foreign_expired_and_garbage_proofs_are_refused() -> None:
    proofs = Proofs("secret", difficulty=2)
    assert not proofs.accept(solve(proofs.challenge("chat"), tamper=True), "chat")
    assert not proofs.accept(solve(Proofs("other", 2).challenge("chat")), "chat")
    assert not proofs.accept("not base64!", "chat")
    assert not proofs.accept(base64.b64encode(b"[]").decode(), "chat")
    with use_clock(FakeClock(utcnow() - timedelta(minutes=6))):
        old = proofs.challenge("chat")
    assert not proofs.accept(solve(old), "chat")


def _request(address: str, proof: str | None = None) -> Any:
    transport = Mock()
    transport.get_extra_info.return_value = (address, 4711)
    headers = {HEADER: proof} if proof else {}
    return make_mocked_request(
        "POST", "/api/v1/cases", headers=headers, transport=transport
    )


async def test_the_limits_ask_for_a_proof_only_beyond_the_usual() -> None:
    rules = {**DEFAULT_RULES, "proof_after_per_address": "2/hour"}
    limits = Limits(
        LimitSettings(rules=rules, trusted_proxies=(ipaddress.ip_network("::1"),)),
        proofs=Proofs("secret", difficulty=2),
    )
    for _ in range(2):
        await limits.admit(_request("198.51.100.1"), proof="chat")
    with pytest.raises(ProofRequired) as asked:
        await limits.admit(_request("198.51.100.1"), proof="chat")
    assert asked.value.status == 428
    challenge = asked.value.extra["challenge"]
    await limits.admit(_request("198.51.100.1", solve(challenge)), proof="chat")
    # Another address is not asked.
    await limits.admit(_request("198.51.100.2"), proof="chat")
