"""Citizen tokens on SQLite and PostgreSQL: one module mints, checks, slides and
revokes them, with the errcodes and texts the citizen API has always answered."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bots.offline.errors import LinkExpired
from bridge import tokens as tokens_module
from bridge.clock import as_utc, utcnow
from bridge.config import Citizen
from bridge.db.models import CaseToken
from bridge.db.store import Store
from bridge.errors import BuergerchatError, Forbidden, NotFound, UnknownToken
from bridge.tokens import (
    CHAT,
    LINK_EXPIRED,
    LINK_UNKNOWN,
    READ_REFRESH_SECONDS,
    RESUME,
    Tokens,
)

from .sample import case, until

CITIZEN = Citizen(
    token_ttl_hours=72,
    max_message_length=4000,
    reference_prefix="BC",
    long_poll_max_seconds=30,
    privacy_url=None,
    resume_page_url="http://127.0.0.1:8080/demo",
    resume_link_ttl_days=14,
)


def at(store: Store, moment: datetime) -> Tokens:
    """Tokens checking on a clock that stands at ``moment``."""
    return Tokens(store, CITIZEN, clock=lambda: moment)


def refused(
    error: pytest.ExceptionInfo[BuergerchatError],
    kind: type[BuergerchatError],
    errcode: str,
    status: int,
    message: str,
) -> bool:
    got = error.value
    return (type(got), got.errcode, got.status, got.message) == (
        kind,
        errcode,
        status,
        message,
    )


async def test_the_lifetimes_are_the_configured_ones(store: Store) -> None:
    """A chat token lives ``citizen.token_ttl_hours``, a resume link
    ``citizen.resume_link_ttl_days``, from when it was minted."""
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    for token, lifetime in (
        (await tokens.mint_chat(case_id), timedelta(hours=72)),
        (await tokens.mint_resume(case_id), timedelta(days=14)),
    ):
        record = await store.get_token(hashlib.sha256(token.encode()).hexdigest())
        assert record is not None
        assert as_utc(record.expires_at) - as_utc(record.created_at) == lifetime


async def test_a_minted_chat_token_opens_its_case(store: Store) -> None:
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    token = await tokens.mint_chat(case_id)
    found = await tokens.check(token, case_id, CHAT)
    assert found.case_id == case_id and found.reference.startswith("BC-")


async def test_another_cases_token_is_forbidden(store: Store) -> None:
    """A live token of case one on case two: 403; on no case at all: 404."""
    tokens = Tokens(store, CITIZEN)
    one, two = await case(store, "c_one"), await case(store, "c_two")
    token = await tokens.mint_chat(one)
    with pytest.raises(Forbidden) as error:
        await tokens.check(token, two, CHAT)
    assert refused(
        error, Forbidden, "BC_FORBIDDEN", 403, "This token belongs to another case."
    )
    with pytest.raises(NotFound) as missing:
        await tokens.check(token, "c_nothere", CHAT)
    assert refused(
        missing,
        NotFound,
        "BC_NOT_FOUND",
        404,
        "There is no case c_nothere. Start a new chat.",
    )


async def test_revoked_or_unknown_tokens_are_refused(store: Store) -> None:
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    chat = await tokens.mint_chat(case_id)
    resume = await tokens.mint_resume(case_id)
    assert await tokens.revoke(case_id, RESUME) == 1
    with pytest.raises(UnknownToken) as error:
        await tokens.check(resume, case_id, RESUME)
    assert refused(error, UnknownToken, "BC_UNKNOWN_TOKEN", 401, LINK_UNKNOWN)
    await tokens.check(chat, case_id, CHAT)  # only the resume links went
    assert await tokens.revoke(case_id) == 1
    not_valid = "This chat link is not valid (any more). Start a new chat."
    for token in (chat, "not-a-token"):
        with pytest.raises(UnknownToken) as error:
            await tokens.check(token, case_id, CHAT)
        assert refused(error, UnknownToken, "BC_UNKNOWN_TOKEN", 401, not_valid)
    with pytest.raises(UnknownToken) as error:
        await tokens.check("not-a-token", case_id, RESUME)
    assert refused(error, UnknownToken, "BC_UNKNOWN_TOKEN", 401, LINK_UNKNOWN)


async def test_expired_tokens_are_refused(store: Store) -> None:
    """Past its lifetime a chat token is unknown; a resume link has expired."""
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    chat = await tokens.mint_chat(case_id)
    resume = await tokens.mint_resume(case_id)
    now = utcnow()
    await at(store, now + tokens.resume_ttl - timedelta(minutes=1)).check(
        resume, case_id, RESUME
    )
    with pytest.raises(LinkExpired) as expired:
        await at(store, now + tokens.resume_ttl + timedelta(seconds=1)).check(
            resume, case_id, RESUME
        )
    assert refused(expired, LinkExpired, "BC_LINK_EXPIRED", 401, LINK_EXPIRED)
    with pytest.raises(UnknownToken) as error:
        await at(store, now + tokens.chat_ttl + timedelta(seconds=1)).check(
            chat, case_id, CHAT
        )
    assert refused(
        error,
        UnknownToken,
        "BC_UNKNOWN_TOKEN",
        401,
        "This chat link has expired. Start a new chat.",
    )


async def test_a_resume_token_is_not_a_chat_token(store: Store) -> None:
    """A resume link only buys a chat token; a chat token is no resume link,
    and neither opens another case."""
    tokens = Tokens(store, CITIZEN)
    case_id, other = await case(store, "c_one"), await case(store, "c_two")
    resume = await tokens.mint_resume(case_id)
    chat = await tokens.mint_chat(case_id)
    with pytest.raises(UnknownToken) as error:
        await tokens.check(resume, case_id, CHAT)
    assert refused(
        error,
        UnknownToken,
        "BC_UNKNOWN_TOKEN",
        401,
        "This is not a chat token. Open the link from the e-mail again to get one, "
        "or start a new chat.",
    )
    for token, case_of in ((chat, case_id), (resume, other)):
        with pytest.raises(UnknownToken) as error:
            await tokens.check(token, case_of, RESUME)
        assert refused(error, UnknownToken, "BC_UNKNOWN_TOKEN", 401, LINK_UNKNOWN)
    assert (await tokens.check(resume, case_id, RESUME)).case_id == case_id


async def expires(store: Store, token: str) -> datetime:
    record = await store.get_token(hashlib.sha256(token.encode()).hexdigest())
    assert record is not None
    return as_utc(record.expires_at)


async def test_a_chat_token_in_use_slides_forward(store: Store) -> None:
    """Used an hour later, a chat token lives its full lifetime from then on;
    used within five minutes it is left alone; a resume link never slides."""
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    chat = await tokens.mint_chat(case_id)
    resume = await tokens.mint_resume(case_id)
    minted, resume_expires = await expires(store, chat), await expires(store, resume)
    now = minted - tokens.chat_ttl
    await at(store, now + timedelta(minutes=4)).check(chat, case_id, CHAT)
    assert await expires(store, chat) == minted
    later = now + timedelta(hours=1)
    await at(store, later).check(chat, case_id, CHAT)
    assert await expires(store, chat) == later + tokens.chat_ttl
    await at(store, later).check(resume, case_id, RESUME)
    assert await expires(store, resume) == resume_expires


async def test_only_the_sha256_is_stored(store: Store) -> None:
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    minted = [await tokens.mint_chat(case_id), await tokens.mint_resume(case_id)]
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM case_tokens"))).mappings().all()
    assert sorted(row["token_hash"] for row in rows) == sorted(
        hashlib.sha256(token.encode()).hexdigest() for token in minted
    )
    stored = " ".join(str(value) for row in rows for value in row.values())
    assert not any(token in stored for token in minted)
    assert {row["purpose"]: row["case_id"] for row in rows} == {
        "chat": case_id,
        "resume": case_id,
    }


async def test_widgets_woken_together_share_one_check(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message wakes every widget of a citizen at once (tabs, devices; the
    widgets bench: a hundred on one token): one database check serves them all,
    and a revocation while it runs is not covered by it."""
    tokens = Tokens(store, CITIZEN)
    case_id = await case(store, "c_one")
    chat = await tokens.mint_chat(case_id)
    asked: list[str] = []
    gate, arrived = asyncio.Event(), asyncio.Event()
    get_token = store.get_token

    async def counted(hashed: str) -> CaseToken | None:
        asked.append(hashed)
        arrived.set()
        await gate.wait()
        return await get_token(hashed)

    monkeypatch.setattr(store, "get_token", counted)
    crowd = [
        asyncio.ensure_future(tokens.check_reading(chat, case_id)) for _ in range(50)
    ]
    await asyncio.wait_for(arrived.wait(), 10)
    for _ in range(20):  # every other asker has had its turn to ask too
        await asyncio.sleep(0)
    assert len(asked) == 1
    gate.set()
    assert {c.case_id for c in await asyncio.gather(*crowd)} == {case_id}
    assert len(asked) == 1
    await tokens.check_reading(chat, case_id)  # trusted now: no third ask
    assert len(asked) == 1

    # A check that began before a revocation answers only who asked before it.
    tokens.forget(case_id)
    gate.clear()
    arrived.clear()
    before = asyncio.ensure_future(tokens.check_reading(chat, case_id))
    await asyncio.wait_for(arrived.wait(), 10)  # it is asking the database
    monkeypatch.setattr(store, "get_token", get_token)
    assert await tokens.revoke(case_id) == 1
    with pytest.raises(UnknownToken):
        # Sharing the older check would wait on the gate (a TimeoutError).
        async with asyncio.timeout(5):
            await tokens.check_reading(chat, case_id)
    gate.set()
    with pytest.raises(UnknownToken):
        await before  # its read came after the revocation's commit


async def test_a_token_in_use_is_checked_again_before_its_trust_runs_out(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget receiving messages never waits for the database: read in the
    last READ_REFRESH_SECONDS of its trust, the token is answered at once and
    checked again in the background. Revoked by another process meanwhile,
    that check ends the trust: the next read is refused, and the case's
    streams are told (its revision moves), never later than the trust."""
    clock = [1000.0]
    # Its own clock (not time.monotonic itself: the event loop keeps that).
    monkeypatch.setattr(
        tokens_module, "time", SimpleNamespace(monotonic=lambda: clock[0])
    )
    tokens = Tokens(store, CITIZEN)
    told: list[str] = []
    tokens.on_forget = told.append
    case_id = await case(store, "c_one")
    chat = await tokens.mint_chat(case_id)
    asked: list[str] = []
    get_token = store.get_token

    async def counted(hashed: str) -> CaseToken | None:
        asked.append(hashed)
        return await get_token(hashed)

    monkeypatch.setattr(store, "get_token", counted)

    def trust_ends() -> float:
        (until, _case), *_ = tokens._trusted.values()
        return until

    await tokens.check_reading(chat, case_id)
    assert len(asked) == 1
    first = trust_ends()
    clock[0] = first - READ_REFRESH_SECONDS / 2
    await tokens.check_reading(chat, case_id)  # answered from the trust …
    assert len(asked) == 1
    await until(lambda: len(asked) == 2)  # … and checked again beside it
    clock[0] = first + 0.01  # the first trust is over, the renewed one not
    await tokens.check_reading(chat, case_id)
    assert len(asked) == 2 and trust_ends() > first

    # Another process revokes (this one is not told): the next background
    # check finds it, and the trust ends there.
    await store.revoke_tokens(case_id, purpose=None)
    clock[0] = trust_ends() - READ_REFRESH_SECONDS / 2
    revision = tokens.revision(case_id)
    await tokens.check_reading(chat, case_id)
    await until(lambda: told)
    assert told == [case_id] and tokens.revision(case_id) != revision
    with pytest.raises(UnknownToken):
        await tokens.check_reading(chat, case_id)
