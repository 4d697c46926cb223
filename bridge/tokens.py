"""Citizen bearer tokens: random, stored only as SHA-256, expiring.

Two purposes: a ``chat`` token (from opening a case, or from a resume link)
reads and writes the case and slides forward while it is used; a ``resume``
token is the personal link in an answer mail and only buys a new chat token.
:class:`Tokens` is the one place that mints, checks and revokes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal

from .clock import as_utc, utcnow
from .db.models import Case, CaseToken
from .db.store import Store
from .errors import BuergerchatError, Forbidden, LinkExpired, NotFound, UnknownToken
from .tasks import Flights, cancel

if TYPE_CHECKING:
    from .config import Citizen

Purpose = Literal["chat", "resume"]
CHAT: Purpose = "chat"
RESUME: Purpose = "resume"
#: A chat token in use is pushed forward only once it has lost this much.
SLIDE_AFTER = timedelta(minutes=5)
#: How long at most a chat token's check is trusted for reading (the long-poll a
#: widget re-issues all the time) without asking the database again (each time
#: half to all of it, at random), and for how many tokens at most. A revoke or
#: erasure in this process ends it at once; one in another process (the CLI)
#: within this time.
READ_TRUST_SECONDS = 10.0
READ_TRUST_MAX = 20_000
#: A trusted token read within this long before its trust runs out is checked
#: again in the background: a widget receiving messages never waits for the
#: database, and the trust still never lasts longer than READ_TRUST_SECONDS.
READ_REFRESH_SECONDS = 2.5

log = logging.getLogger("buergerchat.tokens")

LINK_EXPIRED = (
    "Dieser Link ist abgelaufen. Bitte schreiben Sie uns über den Bürgerchat eine "
    "neue Nachricht und nennen Sie das Vorgangszeichen aus der E-Mail; Sie erhalten "
    "dann einen neuen Link. / This link has expired. Please send us a new message "
    "through the chat, quoting the reference from the e-mail; you will then get a "
    "new link."
)
LINK_UNKNOWN = (
    "Dieser Link ist nicht (mehr) gültig, zum Beispiel weil der Vorgang "
    "abgeschlossen wurde. Bitte schreiben Sie uns eine neue Nachricht. / This link "
    "is not valid (any more), for example because the case was closed. Please send "
    "us a new message."
)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_case_id() -> str:
    """Public, unguessable case id for URLs (the reference is for humans)."""
    return "c_" + secrets.token_urlsafe(16)


class Tokens:
    """Mint, check and revoke a case's citizen tokens (``clock`` for tests)."""

    def __init__(
        self,
        store: Store,
        citizen: Citizen,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.chat_ttl = timedelta(hours=citizen.token_ttl_hours)
        self.resume_ttl = timedelta(days=citizen.resume_link_ttl_days)
        self._now = clock
        #: (token hash, case id) → (trusted until, monotonic; the case)
        self._trusted: OrderedDict[tuple[str, str], tuple[float, Case]] = OrderedDict()
        #: Tells the other bridge processes to forget (bridge.peers).
        self.peers: Callable[[str], None] | None = None
        #: Told whenever a case's tokens may have been revoked (its streams
        #: check theirs again at once).
        self.on_forget: Callable[[str], None] | None = None
        self._revisions: dict[str, int] = {}
        self._epoch = 0
        #: (token hash, case id) → the check in flight, marked with the revision
        self._checking: Flights[tuple[str, str], Case] = Flights()
        #: Background checks of trusted tokens about to run out.
        self._refreshing: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def mint_chat(self, case_id: str) -> str:
        return await self._mint(case_id, CHAT, self.chat_ttl)

    async def mint_resume(self, case_id: str, ttl: timedelta | None = None) -> str:
        """The token of a personal link; it expires after ``ttl`` (default
        ``resume_ttl``; an appointment's link lasts until after it)."""
        return await self._mint(case_id, RESUME, ttl or self.resume_ttl)

    async def _mint(self, case_id: str, purpose: Purpose, ttl: timedelta) -> str:
        token = new_token()
        await self.store.add_token(case_id, token_hash(token), purpose, ttl)
        return token

    async def revoke(self, case_id: str, purpose: Purpose | None = None) -> int:
        """Revoke the case's live tokens (of one purpose); how many there were."""
        self.forget(case_id)
        count = await self.store.revoke_tokens(case_id, purpose=purpose)
        self.forget(case_id)  # a check that ran meanwhile trusted it again
        if self.peers is not None:
            self.peers(case_id)  # after the commit: their next check reads it
        return count

    def forget(self, case_id: str) -> None:
        """No trusted reads for the case any more (revoked, erased)."""
        for key in [k for k in self._trusted if k[1] == case_id]:
            del self._trusted[key]
        self._revisions[case_id] = self._revisions.get(case_id, 0) + 1
        if self.on_forget is not None:
            self.on_forget(case_id)

    def revision(self, case_id: str) -> int:
        """Changes whenever the case's tokens may have been revoked here."""
        return self._epoch + self._revisions.get(case_id, 0)

    def forget_all(self) -> None:
        """Revocations may have been missed (bridge.peers): check anew."""
        self._trusted.clear()
        self._epoch += 1

    async def check_reading(self, token: str, case_id: str) -> Case:
        """:meth:`check` of a chat token for reading the case's events, trusted
        for up to READ_TRUST_SECONDS after a check that asked the database."""
        key = (token_hash(token), case_id)
        now = time.monotonic()
        trusted = self._trusted.get(key)
        if trusted is not None and trusted[0] > now:
            if trusted[0] - now < READ_REFRESH_SECONDS and key not in self._refreshing:
                task = asyncio.create_task(self._refresh(key, token, case_id))
                self._refreshing[key] = task
                task.add_done_callback(lambda _: self._refreshing.pop(key, None))
            return trusted[1]
        return await self._check_and_trust(key, token, case_id)

    async def stop(self) -> None:
        """Background checks end before the database closes."""
        for task in list(self._refreshing.values()):
            await cancel(task)

    async def _refresh(self, key: tuple[str, str], token: str, case_id: str) -> None:
        """A trusted token in use, checked again before its trust runs out.
        Revoked, expired or erased meanwhile (another process): the case's
        reads are trusted no longer, and its streams check now and end."""
        try:
            await self._check_and_trust(key, token, case_id)
        except BuergerchatError:
            self.forget(case_id)
        except Exception:  # noqa: BLE001 - the trust runs out; the next read asks
            log.warning("checking a token of %s again failed", case_id, exc_info=True)

    async def _check_and_trust(
        self, key: tuple[str, str], token: str, case_id: str
    ) -> Case:
        now = time.monotonic()
        revision = self.revision(case_id)
        # The widgets of one citizen (tabs, devices) woken by one message ask
        # together: one database check for all of them — one that began after
        # every revocation they could have seen.
        case = await self._checking.share(
            key, revision, partial(self._check_chat, token, case_id)
        )
        if self.revision(case_id) != revision:
            # A revocation came while the database was asked: what it said may
            # predate it. Not trusted; the next read asks again.
            return case
        # Trusted for a little less than the full time at random: a crowd of
        # widgets that connected together does not ask again together.
        trust = READ_TRUST_SECONDS * random.uniform(0.5, 1.0)
        self._trusted[key] = (now + trust, case)
        self._trusted.move_to_end(key)
        while len(self._trusted) > READ_TRUST_MAX:
            self._trusted.popitem(last=False)
        return case

    async def check(self, token: str, case_id: str, purpose: Purpose) -> Case:
        """The case, if ``token`` is a live token of ``purpose`` for exactly this
        case; otherwise the citizen's error (BC_NOT_FOUND, BC_UNKNOWN_TOKEN,
        BC_FORBIDDEN, and BC_LINK_EXPIRED for an expired resume link)."""
        if purpose == CHAT:
            return await self._check_chat(token, case_id)
        return await self._check_resume(token, case_id)

    async def _check_chat(self, token: str, case_id: str) -> Case:
        case = await self.store.get_case(case_id)
        if case is None or case.state == "purged":
            raise NotFound(f"There is no case {case_id}. Start a new chat.")
        hashed = token_hash(token)
        record = await self.store.get_token(hashed)
        if record is None or record.revoked_at is not None:
            raise UnknownToken(
                "This chat link is not valid (any more). Start a new chat."
            )
        now = self._now()
        if as_utc(record.expires_at) <= now:
            raise UnknownToken("This chat link has expired. Start a new chat.")
        if record.case_id != case.case_id:
            raise Forbidden("This token belongs to another case.")
        if record.purpose != CHAT:
            # A resume link's token only buys a new chat token (POST …/resume).
            raise UnknownToken(
                "This is not a chat token. Open the link from the e-mail again to "
                "get one, or start a new chat."
            )
        await self._slide(record, now)
        return case

    async def _slide(self, record: CaseToken, now: datetime) -> None:
        """Sliding expiry: a chat token in use lives ``chat_ttl`` from now."""
        if as_utc(record.expires_at) - now < self.chat_ttl - SLIDE_AFTER:
            await self.store.extend_token(record.token_hash, now + self.chat_ttl)

    async def _check_resume(self, token: str, case_id: str) -> Case:
        record = await self.store.get_token(token_hash(token))
        if (
            record is None
            or record.revoked_at is not None
            or record.purpose != RESUME
            or record.case_id != case_id
        ):
            raise UnknownToken(LINK_UNKNOWN)
        if as_utc(record.expires_at) <= self._now():
            raise LinkExpired(LINK_EXPIRED)
        case = await self.store.get_case(case_id)
        if case is None or case.state == "purged":
            raise UnknownToken(LINK_UNKNOWN)
        return case
