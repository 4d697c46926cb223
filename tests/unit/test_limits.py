"""The abuse limits below the e2e layer: the client address behind trusted
proxies (and not in front of them), rates that refuse the request over the
limit without counting it, concurrent long-polls, and the config section."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request

from bridge.config import ConfigError
from bridge.errors import RateLimited
from bridge.limits import DEFAULT_RULES, Limits, LimitSettings
from tests.harness import example_config


def request(peer: str, **headers: str) -> Any:
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 4711)
    return make_mocked_request(
        "POST", "/api/v1/cases", headers=headers, transport=transport
    )


def limits(**changes: Any) -> Limits:
    proxies = tuple(ipaddress.ip_network(p) for p in changes.pop("proxies", ()))
    rules = {**DEFAULT_RULES, **changes.pop("rules", {})}
    return Limits(LimitSettings(rules=rules, trusted_proxies=proxies, **changes))


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    """A client cannot choose its address by sending X-Forwarded-For."""
    assert limits().client(
        request("203.0.113.7", **{"X-Forwarded-For": "1.2.3.4"})
    ) == ("203.0.113.7")


def test_behind_a_trusted_proxy_the_nearest_untrusted_address_counts() -> None:
    lim = limits(proxies=["10.0.0.0/8"])
    # The client put a fake first entry; the proxy appended the real peer.
    spoofed = request("10.0.0.2", **{"X-Forwarded-For": "1.2.3.4, 198.51.100.9"})
    assert lim.client(spoofed) == "198.51.100.9"
    chained = request("10.0.0.2", **{"X-Forwarded-For": "198.51.100.9, 10.0.0.5"})
    assert lim.client(chained) == "198.51.100.9"
    forwarded = request("10.0.0.2", Forwarded='for="[2001:db8::7]:4711";proto=https')
    assert lim.client(forwarded) == "2001:db8::/64"
    assert lim.client(request("10.0.0.2")) == "10.0.0.2"
    # A peer outside the trusted networks is taken as it is.
    assert lim.client(request("192.0.2.1", **{"X-Forwarded-For": "1.2.3.4"})) == (
        "192.0.2.1"
    )


def test_an_ipv6_line_counts_as_one_address() -> None:
    """Every address of one /64 (one subscriber's line) counts as the same
    client; IPv4, and IPv4 mapped into IPv6, as themselves."""
    lim = limits()
    first = lim.client(request("2001:db8:1:2::1"))
    assert first == lim.client(request("2001:db8:1:2:ffff::9")) == "2001:db8:1:2::/64"
    assert lim.client(request("2001:db8:1:3::1")) != first
    assert lim.client(request("::ffff:198.51.100.7")) == "198.51.100.7"
    assert lim.client(request("198.51.100.7")) == "198.51.100.7"


async def test_over_the_limit_is_429_with_retry_after_and_counts_nothing() -> None:
    lim = limits(rules={"chats_per_address": "3/minute;5/hour"})
    for _ in range(3):
        await lim.hit("chats_per_address", "198.51.100.1")
    with pytest.raises(RateLimited) as refused:
        await lim.hit("chats_per_address", "198.51.100.1")
    error = refused.value
    assert error.status == 429 and 1 <= error.extra["retry_after_seconds"] <= 60
    assert error.headers["Retry-After"] == str(error.extra["retry_after_seconds"])
    assert error.extra["limit"] == "chats_per_address"
    assert "Sekunden" in error.message and "seconds" in error.message
    # Refused requests were not counted: the hour still has 2 left for later.
    stats = await lim.limiter.get_window_stats(
        lim._items["chats_per_address"][1], "chats_per_address", "198.51.100.1"
    )
    assert stats.remaining == 2
    # Another address is not affected.
    await lim.hit("chats_per_address", "198.51.100.2")
    assert not await lim.allowed("chats_per_address", "198.51.100.1")


async def test_requests_arriving_together_get_exactly_the_allowed_number() -> None:
    """Thirty at once against 20 a minute: 20 pass, not one more (the e2e flood
    once took 22 when test and count were not one step)."""
    lim = limits(rules={"messages_per_case": "20/minute;300/hour"})
    answers = await asyncio.gather(
        *(lim.allowed("messages_per_case", "case-1") for _ in range(30))
    )
    assert answers.count(True) == 20


async def test_concurrent_polls_are_capped_per_token_and_address() -> None:
    lim = limits(polls_per_token=2, polls_per_address=3)
    async with lim.poll("t1", "a"), lim.poll("t1", "a"):
        with pytest.raises(RateLimited):
            async with lim.poll("t1", "a"):
                pass
        async with lim.poll("t2", "a"):
            with pytest.raises(RateLimited) as refused:
                async with lim.poll("t3", "a"):
                    pass
            assert refused.value.extra["limit"] == "polls_per_address"
    # All released: the same token may poll again.
    async with lim.poll("t1", "a"):
        assert lim._polls["t:t1"] == 1
    assert not lim._polls


def test_the_section_is_checked_with_file_and_line(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["limits"] = {
            "chats_per_address": "ten per hour",
            "trusted_proxies": ["10.0.0.0/8", "not-a-network"],
            "polls_per_token": 0,
        }

    with pytest.raises(ConfigError) as caught:
        example_config(tmp_path, change)
    text = str(caught.value)
    assert "limits.chats_per_address" in text and "3/minute;10/hour" in text
    assert "not-a-network" in text
    assert "limits.polls_per_token: must be at least 1" in text


def test_defaults_and_settings(tmp_path: Path) -> None:
    config = example_config(tmp_path)
    assert config.limits.rules == DEFAULT_RULES
    assert config.limits.polls_per_token == 3

    def change(data: dict[str, Any]) -> None:
        data["limits"] = {"trusted_proxies": ["127.0.0.1"], "chats_total": "5/minute"}

    tuned = example_config(tmp_path / "b", change)
    assert tuned.limits.rules["chats_total"] == "5/minute"
    assert str(tuned.limits.trusted_proxies[0]) == "127.0.0.1/32"
