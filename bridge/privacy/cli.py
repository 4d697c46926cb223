"""``buergerchat erase``, ``export``, ``retention`` and ``privacy-log``: the
data protection officer's commands (README "Data protection").

Erasure and export need Synapse (the room, the media, the ghost) and every
bot's part, so the command hands the request to the running Bürgerchat as a
durable job and waits for it: a request is never half done, and if Bürgerchat
is not running it is done as soon as it runs. The command says which.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..clock import as_utc, utcnow
from ..config import Config
from ..db.engine import create_engine, database_url, migrate
from ..db.models import Case, PrivacyAudit
from ..db.store import Store
from ..jobs import DONE, PARKED, JobQueue
from .service import (
    BY_CLI,
    ERASED,
    EXPIRED,
    EXPORTED,
    PURGE_JOB,
    REQUEST_JOB,
    expired_cases,
)

#: The command's exit codes beyond 0 and 1.
NOT_CONFIRMED = 2
STILL_QUEUED = 3


def configure(sub: Any) -> None:
    erase = sub.add_parser(
        "erase",
        help="erase cases for good: by reference or every case of an e-mail address",
    )
    _who(erase)
    erase.add_argument("--yes", action="store_true", help="do not ask to confirm")
    _wait(erase)
    export = sub.add_parser(
        "export",
        help="everything about cases (transcript, data, files) as a zip (Art. 15)",
    )
    _who(export)
    export.add_argument("--out", type=Path, required=True, help="the zip to write")
    export.add_argument("--yes", action="store_true", help="do not ask to confirm")
    _wait(export)
    retention = sub.add_parser(
        "retention", help="list the cases whose retention period ended; --yes erases"
    )
    retention.add_argument(
        "--as-of",
        help="judge as of this day or instant (ISO 8601) instead of now; "
        "with --yes this erases early, on purpose",
    )
    retention.add_argument("--yes", action="store_true", help="erase them now")
    _wait(retention)
    log = sub.add_parser("privacy-log", help="the audit of erasures and exports")
    log.add_argument("--limit", type=int, default=50)


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("references", nargs="*", help="case references (BC-2026-…)")
    parser.add_argument("--email", help="every case of this e-mail address")


def _wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=300.0,
        help="seconds to wait for the running Bürgerchat (default 300)",
    )


def commands() -> dict[str, Callable[[Config, argparse.Namespace], int]]:
    return {
        "erase": lambda c, a: asyncio.run(_erase(c, a)),
        "export": lambda c, a: asyncio.run(_export(c, a)),
        "retention": lambda c, a: asyncio.run(_retention(c, a)),
        "privacy-log": lambda c, a: asyncio.run(_log(c, a)),
    }


class _Db:
    def __init__(self, config: Config) -> None:
        self.engine = create_engine(
            database_url(config.bridge.database, config.data_dir)
        )
        self.store = Store(self.engine)
        self.jobs = JobQueue(self.engine)

    async def __aenter__(self) -> _Db:
        await migrate(self.engine)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.dispose()


def _named(args: argparse.Namespace) -> bool:
    if bool(args.references) == bool(args.email):
        print(
            "Name the cases: one or more references (BC-2026-000123), or --email "
            "with the address the person gave.",
            file=sys.stderr,
        )
        return False
    return True


async def _cases_by_reference(store: Store, references: list[str]) -> list[Case] | None:
    found = []
    async with store.session() as s:
        for reference in references:
            case = await s.scalar(
                select(Case).where(Case.reference == reference.strip().upper())
            )
            if case is None:
                print(f"There is no case {reference}.", file=sys.stderr)
                return None
            found.append(case)
    return found


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes", "j", "ja")


def _describe(case: Case) -> str:
    opened = as_utc(case.created_at).strftime("%Y-%m-%d")
    return f"  {case.reference}  {case.department}  {case.state}  opened {opened}"


async def _erase(config: Config, args: argparse.Namespace) -> int:
    if not _named(args):
        return 1
    async with _Db(config) as db:
        if args.references:
            cases = await _cases_by_reference(db.store, args.references)
            if cases is None:
                return 1
            print("Erasing for good (room, messages, files, transcript, mails):")
            print("\n".join(_describe(c) for c in cases))
        else:
            print(
                f"Erasing for good every case of {args.email} (room, messages, "
                "files, transcript, mails)."
            )
        if not args.yes and not _confirm("Erase?"):
            print("Nothing erased.")
            return NOT_CONFIRMED
        return await _request(db, args, {"action": ERASED})


async def _export(config: Config, args: argparse.Namespace) -> int:
    if not _named(args):
        return 1
    out = args.out.resolve()
    async with _Db(config) as db:
        if args.references:
            cases = await _cases_by_reference(db.store, args.references)
            if cases is None:
                return 1
            print("Exporting everything about:")
            print("\n".join(_describe(c) for c in cases))
        else:
            print(f"Exporting everything about every case of {args.email}.")
        replace = " (it exists and is replaced)" if out.exists() else ""
        if not args.yes and not _confirm(f"Write {out}{replace}?"):
            print("Nothing exported.")
            return NOT_CONFIRMED
        code = await _request(db, args, {"action": EXPORTED, "out": str(out)})
    if code == 0:
        print(f"Written: {out} (hand it over securely; it holds personal data).")
    return code


async def _request(db: _Db, args: argparse.Namespace, what: dict[str, Any]) -> int:
    key = f"{REQUEST_JOB}:{secrets.token_hex(8)}"
    payload = {
        **what,
        "references": [r.strip().upper() for r in args.references],
        "email": args.email,
        "actor": BY_CLI,
    }
    await db.jobs.enqueue(REQUEST_JOB, key, payload)
    state = await _wait_for(db.jobs, [key], args.wait)
    if state == PARKED:
        job = await db.jobs.get(key)
        print(f"Failed: {job.last_error if job else 'unknown'}", file=sys.stderr)
        return 1
    if state != DONE:
        return _still_queued(args.wait)
    rows = await _audit(db, key)
    for row in rows:
        print(_line(row))
    refused = [r for r in rows if r.action == "refused"]
    return 1 if refused else 0


async def _wait_for(jobs: JobQueue, keys: list[str], wait: float) -> str | None:
    """DONE once all jobs are done, PARKED if one is, else None after ``wait``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        states = [getattr(await jobs.get(k), "state", None) for k in keys]
        if PARKED in states:
            return PARKED
        if all(s == DONE for s in states):
            return DONE
        if loop.time() > deadline:
            return None
        await asyncio.sleep(0.5)


def _still_queued(wait: float) -> int:
    print(
        f"Still queued after {wait:.0f} s: Bürgerchat finishes it when it runs "
        "(buergerchat run); check with buergerchat privacy-log.",
        file=sys.stderr,
    )
    return STILL_QUEUED


async def _audit(db: _Db, request: str) -> list[PrivacyAudit]:
    async with db.store.session() as s:
        rows = list(await s.scalars(select(PrivacyAudit).order_by(PrivacyAudit.id)))
    return [r for r in rows if r.detail.get("request") == request]


def _line(row: PrivacyAudit) -> str:
    counts = ", ".join(
        f"{k} {v}" for k, v in sorted(row.detail.items()) if k != "request"
    )
    at = as_utc(row.at).strftime("%Y-%m-%d %H:%M:%S")
    return f"{at}  {row.action:<20} {row.reference or '-':<16} {row.actor}  {counts}"


def _as_of(value: str | None) -> datetime:
    if not value:
        return utcnow()
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _retention(config: Config, args: argparse.Namespace) -> int:
    try:
        now = _as_of(args.as_of)
    except ValueError:
        print(f"--as-of {args.as_of!r} is no ISO 8601 date or time.", file=sys.stderr)
        return 1
    async with _Db(config) as db:
        expired = await expired_cases(db.store, config, now)
        if not expired:
            print(f"No case's retention period has ended as of {now:%Y-%m-%d %H:%M}.")
            return 0
        print(f"Retention ended as of {now:%Y-%m-%d %H:%M} for:")
        for case, period in expired:
            print(f"{_describe(case)}  ({period})")
        if not args.yes:
            print("Run again with --yes to erase them now (the daily sweep will too).")
            return 0
        keys = []
        for case, _ in expired:
            key = f"{PURGE_JOB}:{case.case_id}"
            await db.jobs.enqueue(
                PURGE_JOB,
                key,
                {"case_id": case.case_id, "action": EXPIRED, "actor": BY_CLI},
            )
            keys.append(key)
        state = await _wait_for(db.jobs, keys, args.wait)
        if state == PARKED:
            print("An erasure failed; see buergerchat privacy-log and the log.")
            return 1
        if state != DONE:
            return _still_queued(args.wait)
        print(f"Erased {len(keys)} case(s).")
        return 0


async def _log(config: Config, args: argparse.Namespace) -> int:
    async with _Db(config) as db:
        async with db.store.session() as s:
            rows = list(
                await s.scalars(
                    select(PrivacyAudit)
                    .order_by(PrivacyAudit.id.desc())
                    .limit(args.limit)
                )
            )
    for row in reversed(rows):
        print(_line(row))
    if not rows:
        print("Nothing erased, expired or exported yet.")
    return 0
