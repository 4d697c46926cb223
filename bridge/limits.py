"""Abuse limits on everything anonymous: per client address, per case, per
recipient and for the whole service (issue "Safe to put on a town's website").

Rates are counted with the ``limits`` library (moving windows; in memory by
default, shared between bridge processes with ``limits.storage: redis://…``).
Concurrent long-polls are counted in the process that holds them. Over a limit
a request is answered ``429 BC_RATE_LIMITED`` with ``Retry-After`` and
``retry_after_seconds``; nothing is stored, so the widget keeps what was typed
and sends it again then.

The client address is the peer's, unless the peer is a configured trusted proxy:
then it is the nearest address in ``X-Forwarded-For`` (or ``Forwarded: for=``)
that is not itself a trusted proxy — a client cannot choose its own address by
sending the header.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from .blocks import Blocks
from .errors import RateLimited
from .proof import HEADER as PROOF_HEADER
from .proof import Proofs
from .yamlconf import Section

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCK_STRIPES = 64

#: Rules as the ``limits`` library writes them ("3/minute;10/hour"). Sized so a
#: real citizen never meets them: one to three chats, writing as fast as a
#: person types, a few files — while one address opens at most ten chats an hour.
DEFAULT_RULES: dict[str, str] = {
    "chats_per_address": "3/minute;10/hour",
    "chats_total": "120/minute;1000/hour",
    "offline_per_address": "3/minute;10/hour",
    "offline_total": "60/minute;500/hour",
    "messages_per_case": "20/minute;300/hour",
    # The widget says "typing" at most every 4 s: 15 a minute is one person.
    "typing_per_case": "20/minute;600/hour",
    "uploads_per_case": "10/10minutes;30/hour",
    "uploads_per_address": "20/10minutes;60/hour",
    "confirmations_per_recipient": "3/day",
    "resumes_per_address": "10/minute;60/hour",
    # Reports of barriers on /accessibility (a mail to the town each).
    "feedback_per_address": "3/minute;10/hour",
    "feedback_total": "30/minute;300/hour",
    # Video appointments (the virtual citizen office): booked and walk-ins.
    "bookings_per_address": "3/minute;10/hour",
    "bookings_total": "60/minute;500/hour",
    # A staff member's calendar program fetching their feed.
    "calendar_per_address": "30/minute;300/hour",
    # Beyond these, new chats and offline messages need a proof of work.
    "proof_after_per_address": "2/hour",
    "proof_after_total": "30/minute",
}


@dataclass(frozen=True)
class LimitSettings:
    rules: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))
    #: Concurrent long-polls one citizen token, one address may hold.
    polls_per_token: int = 3
    polls_per_address: int = 60
    trusted_proxies: tuple[Network, ...] = ()
    storage: str = "memory://"
    #: How long an admin's !block lasts.
    block_hours: float = 24.0
    #: From this many chats of one address within an hour, staff get one
    #: summary instead of a notice per chat.
    burst_chats: int = 3
    #: Hex zeros the proof of work's key must start with (4: about 65,000
    #: hashes, a second or two in a phone's browser).
    proof_difficulty: int = 4


def _rule(value: str) -> str | None:
    try:
        parse_many(value)
    except ValueError:
        return (
            f"'{value}' is not a rate like '3/minute;10/hour' (count/period, "
            "periods: second, minute, hour, day; several separated by ';')"
        )
    return None


def read_limits(section: Section) -> LimitSettings:
    """The ``limits:`` section of buergerchat.yaml (every key optional)."""
    rules = {
        name: section.get(name, str, default, check=_rule)
        for name, default in DEFAULT_RULES.items()
    }
    polls_token = section.get("polls_per_token", int, 3, check=_at_least_one)
    polls_address = section.get("polls_per_address", int, 60, check=_at_least_one)
    proxies: list[Network] = []
    if section.has("trusted_proxies"):
        for item in section.items("trusted_proxies"):
            try:
                proxies.append(ipaddress.ip_network(str(item.value), strict=False))
            except ValueError:
                item.error(f"'{item.value}' is not an address or network (CIDR)")
    storage = section.get("storage", str, "memory://", check=_storage)
    block_hours = section.get("block_hours", float, 24.0, check=_positive)
    burst = section.get("burst_chats", int, 3, check=_at_least_two)
    difficulty = section.get("proof_difficulty", int, 4, check=_difficulty)
    section.finish()
    return LimitSettings(
        rules=rules,
        polls_per_token=polls_token,
        polls_per_address=polls_address,
        trusted_proxies=tuple(proxies),
        storage=storage,
        block_hours=block_hours,
        burst_chats=burst,
        proof_difficulty=difficulty,
    )


def _difficulty(value: int) -> str | None:
    return None if 1 <= value <= 6 else "must be between 1 and 6 (hex zeros)"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _at_least_two(value: int) -> str | None:
    return None if value >= 2 else "must be at least 2"


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be at least 1"


def _storage(value: str) -> str | None:
    if value.startswith(("memory://", "redis://", "rediss://", "async+redis://")):
        return None
    return "must be memory:// or a redis:// URL"


class Limits:
    def __init__(
        self,
        settings: LimitSettings,
        blocks: Blocks | None = None,
        proofs: Proofs | None = None,
    ) -> None:
        self.settings = settings
        #: Admins' blocks and the client keys (None: nothing is blocked).
        self.blocks = blocks
        #: Proofs of work under unusual load (None: never asked).
        self.proofs = proofs
        url = settings.storage
        # The library's asyncio storages are named async+memory://, async+redis://.
        self.storage = storage_from_string(
            url if url.startswith("async+") else "async+" + url
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        #: Test and count as one step per (kind, key); striped, so neither one
        #: lock for everything nor one per key that is never freed.
        self._counting = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._items: dict[str, list[RateLimitItem]] = {
            name: list(parse_many(rule)) for name, rule in settings.rules.items()
        }
        self._polls: Counter[str] = Counter()

    # --- who is asking ----------------------------------------------------------

    def client(self, request: web.Request) -> str:
        """The client's address (see the module docstring) as limits count it:
        an IPv6 address as its /64, the network one subscriber gets (else one
        line could take a new address for every request)."""
        return _counted(self._address(request))

    def _address(self, request: web.Request) -> str:
        peer = request.remote or ""
        if not self._trusted(peer):
            return peer
        chain = _forwarded_chain(request)
        for address in reversed(chain):
            if not self._trusted(address):
                return address
        return chain[0] if chain else peer

    async def admit(
        self,
        request: web.Request,
        *rates: tuple[str, str],
        proof: str | None = None,
    ) -> str | None:
        """One anonymous request that creates something: refused while its
        address is blocked; under unusual load it needs a proof of work for
        ``proof`` (its purpose); then it is counted against ``rates`` ((name,
        key) pairs, key "address" for the client's). Returns the client key."""
        address = self.client(request)
        key = self.blocks.key(address) if self.blocks is not None else None
        if self.blocks is not None:
            await self.blocks.check(key)
        if proof is not None and self.proofs is not None:
            await self._proven(request, proof, address)
        for name, which in rates:
            await self.hit(name, address if which == "address" else which)
        return key

    async def _proven(self, request: web.Request, purpose: str, address: str) -> None:
        header = request.headers.get(PROOF_HEADER)
        assert self.proofs is not None
        if header and not self.proofs.accept(header, purpose):
            raise self.proofs.require(purpose, "the proof was not valid (any more)")
        counted = (
            ("proof_after_per_address", address),
            ("proof_after_total", "all"),
        )
        # see hit(); keyed by the service-wide counter both share
        async with self._lock("proof_after_total", "all"):
            if not header:
                for name, who in counted:
                    for item in self._items[name]:
                        if not await self.limiter.test(item, name, who):
                            raise self.proofs.require(purpose, name)
            for name, who in counted:
                for item in self._items[name]:
                    await self.limiter.hit(item, name, who)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.settings.trusted_proxies)

    # --- counting -----------------------------------------------------------------

    async def hit(self, name: str, key: str) -> None:
        """Count one request of kind ``name`` for ``key`` (an address, a case, a
        recipient, or "all"); RateLimited if one of its rates is used up (then
        nothing is counted; only when another process took the last place
        between test and count may an earlier rate of the kind keep the hit)."""
        items = self._items[name]
        # Test and count are two awaits: without the lock, requests arriving
        # together all pass the test before any is counted (30 at once took 22
        # of 20 places). Between processes (Redis) the hit's own answer decides.
        async with self._lock(name, key):
            for item in items:
                if not await self.limiter.test(item, name, key):
                    raise RateLimited(await self._retry_after(item, name, key), name)
            for item in items:
                if not await self.limiter.hit(item, name, key):
                    raise RateLimited(await self._retry_after(item, name, key), name)

    async def check(self, name: str, key: str) -> None:
        """RateLimited if a request of kind ``name`` for ``key`` would be over
        a rate now; nothing is counted (the caller counts once it succeeded,
        so failed attempts use up nobody's allowance)."""
        for item in self._items[name]:
            if not await self.limiter.test(item, name, key):
                raise RateLimited(await self._retry_after(item, name, key), name)

    def _lock(self, name: str, key: str) -> asyncio.Lock:
        return self._counting[hash((name, key)) % LOCK_STRIPES]

    async def allowed(self, name: str, key: str) -> bool:
        """Count one if it is allowed; False (nothing counted) if not."""
        try:
            await self.hit(name, key)
        except RateLimited:
            return False
        return True

    async def _retry_after(self, item: RateLimitItem, *ids: str) -> int:
        stats = await self.limiter.get_window_stats(item, *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def held_polls(self) -> int:
        """Long-polls held by this process now (each counts once per address)."""
        return sum(n for key, n in self._polls.items() if key.startswith("a:"))

    @asynccontextmanager
    async def poll(self, token: str, address: str) -> AsyncIterator[None]:
        """Hold one long-poll of ``token`` from ``address`` for the block."""
        keys = (f"t:{token}", f"a:{address}")
        caps = (self.settings.polls_per_token, self.settings.polls_per_address)
        for key, cap in zip(keys, caps, strict=True):
            if self._polls[key] >= cap:
                raise RateLimited(
                    2, "polls_per_token" if key[0] == "t" else "polls_per_address"
                )
        for key in keys:
            self._polls[key] += 1
        try:
            yield
        finally:
            for key in keys:
                self._polls[key] -= 1
                if self._polls[key] <= 0:
                    del self._polls[key]


def _counted(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _forwarded_chain(request: web.Request) -> list[str]:
    """Addresses the proxies appended, client first: ``Forwarded: for=`` if
    present, else ``X-Forwarded-For``."""
    chain: list[str] = []
    for element in request.forwarded:
        value = element.get("for")
        if value:
            chain.append(_strip(value))
    if chain:
        return chain
    header = ",".join(request.headers.getall("X-Forwarded-For", []))
    return [_strip(part) for part in header.split(",") if part.strip()]


def _strip(value: str) -> str:
    """``"[2001:db8::1]:4711"`` → ``2001:db8::1``; ``1.2.3.4:80`` → ``1.2.3.4``."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value
