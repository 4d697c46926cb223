"""Reads and writes of the outbox table, each a small transaction.

Claiming a mail is a compare-and-swap on ``(id, state, attempts)``: two workers
(two bridge processes, or a worker and a test's ``flush()``) can race for the same
row, and only one UPDATE matches. This needs no ``SELECT … FOR UPDATE SKIP
LOCKED``, so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import as_utc
from bridge.db.tables import TableStore
from bridge.mail.models import PARKED, QUEUED, SENDING, SENT, STATES, OutboxMail

_DUE_STATES = (QUEUED, SENDING)


def _insert_once(dialect: str, values: dict[str, Any]) -> Any:
    """INSERT that does nothing when the dedup key exists, on both databases."""
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(OutboxMail)
    elif dialect == "sqlite":
        stmt = sqlite.insert(OutboxMail)
    else:
        raise NotImplementedError(f"the mail outbox does not support {dialect}")
    return (
        stmt.values(**values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(OutboxMail.id)
    )


class OutboxStore(TableStore):
    async def insert(
        self, values: dict[str, Any], session: AsyncSession | None = None
    ) -> tuple[OutboxMail, bool]:
        """Insert a mail unless its dedup key is known; returns (row, created).

        With ``session`` the insert joins the caller's transaction (e.g. the one
        creating the case), so the case and its mails are committed together.
        """
        if session is not None:
            return await self._insert(session, values)
        async with self.session.begin() as s:
            return await self._insert(s, values)

    async def _insert(
        self, s: AsyncSession, values: dict[str, Any]
    ) -> tuple[OutboxMail, bool]:
        dialect = s.get_bind().dialect.name
        new_id = (await s.execute(_insert_once(dialect, values))).scalar_one_or_none()
        row = await s.scalar(
            select(OutboxMail)
            .where(OutboxMail.dedup_key == values["dedup_key"])
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted or already there
        return row, new_id is not None

    async def claim_next(
        self, now: datetime, lease: timedelta, mail_id: int | None = None
    ) -> OutboxMail | None:
        """Take the next due mail (queued and due, or sending with a lapsed lease)
        — or only ``mail_id``, if it is due — by moving it to ``sending`` with a
        lease and one more attempt."""
        for _ in range(5):  # another worker may win a row; then try the next one
            query = select(OutboxMail).where(
                OutboxMail.state.in_(_DUE_STATES), OutboxMail.next_attempt_at <= now
            )
            if mail_id is not None:
                query = query.where(OutboxMail.id == mail_id)
            async with self.session() as s:
                candidate = await s.scalar(
                    query.order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(1)
                )
            if candidate is None:
                return None
            if await self._swap(
                candidate,
                state=SENDING,
                attempts=candidate.attempts + 1,
                next_attempt_at=now + lease,
            ):
                return await self.get(candidate.id)
        return None

    async def _swap(self, mail: OutboxMail, **values: Any) -> bool:
        async with self.session.begin() as s:
            result = await s.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.id == mail.id,
                    OutboxMail.state == mail.state,
                    OutboxMail.attempts == mail.attempts,
                )
                .values(**values)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def finish(self, mail: OutboxMail, **values: Any) -> bool:
        """Record the outcome of a claimed mail; False if its lease was lost."""
        async with self.session.begin() as s:
            result = await s.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.id == mail.id,
                    OutboxMail.state == SENDING,
                    OutboxMail.attempts == mail.attempts,
                )
                .values(**values)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def next_due_at(self) -> datetime | None:
        async with self.session() as s:
            value = await s.scalar(
                select(func.min(OutboxMail.next_attempt_at)).where(
                    OutboxMail.state.in_(_DUE_STATES)
                )
            )
        return as_utc(value) if value is not None else None

    async def get(self, mail_id: int) -> OutboxMail | None:
        async with self.session() as s:
            return await s.get(OutboxMail, mail_id, populate_existing=True)

    async def by_dedup_key(self, dedup_key: str) -> OutboxMail | None:
        async with self.session() as s:
            return await s.scalar(
                select(OutboxMail).where(OutboxMail.dedup_key == dedup_key)
            )

    async def all(self, states: Sequence[str] = STATES) -> Sequence[OutboxMail]:
        async with self.session() as s:
            rows = await s.scalars(
                select(OutboxMail)
                .where(OutboxMail.state.in_(states))
                .order_by(OutboxMail.id)
            )
            return rows.all()

    async def oldest_waiting(self) -> datetime | None:
        """When the oldest mail not yet taken by a server was queued."""
        async with self.session() as s:
            value = await s.scalar(
                select(func.min(OutboxMail.created_at)).where(
                    OutboxMail.state.in_(_DUE_STATES)
                )
            )
        return as_utc(value) if value is not None else None

    async def counts(self) -> dict[str, int]:
        async with self.session() as s:
            rows = await s.execute(
                select(OutboxMail.state, func.count()).group_by(OutboxMail.state)
            )
            found = {state: int(n) for state, n in rows.all()}
        return {state: found.get(state, 0) for state in STATES}

    async def requeue(self, mail_id: int, now: datetime) -> bool:
        """Give a parked mail a fresh set of attempts, due now."""
        async with self.session.begin() as s:
            result = await s.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail_id, OutboxMail.state == PARKED)
                .values(state=QUEUED, attempts=0, next_attempt_at=now)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def of_case(self, case_id: str) -> list[OutboxMail]:
        async with self.session() as s:
            rows = await s.scalars(
                select(OutboxMail)
                .where(OutboxMail.case_id == case_id)
                .order_by(OutboxMail.id)
            )
            return list(rows)

    async def cases_mailed_to(self, address: str) -> list[str]:
        """Cases with a mail to ``address`` (any case of letters)."""
        wanted = address.strip().lower()
        async with self.session() as s:
            rows = await s.execute(
                select(OutboxMail.case_id, OutboxMail.recipients).where(
                    OutboxMail.case_id.is_not(None)
                )
            )
            return sorted(
                {
                    case_id
                    for case_id, recipients in rows
                    if case_id is not None
                    and any(r.strip().lower() == wanted for r in recipients or [])
                }
            )

    async def blank_sent(self, before: datetime) -> int:
        """Recipients, subject and body of mails sent before ``before`` are
        emptied; the row stays, so the same mail is never sent again."""
        async with self.session.begin() as s:
            result = await s.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.state == SENT,
                    OutboxMail.sent_at < before,
                    OutboxMail.subject != "",
                )
                .values(raw=b"", subject="", recipients=[])
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def erase_case(self, case_id: str) -> int:
        async with self.session.begin() as s:
            result = await s.execute(
                delete(OutboxMail).where(OutboxMail.case_id == case_id)
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def purge(self, before: datetime) -> int:
        """Delete sent mails sent before ``before`` and parked ones created before."""
        async with self.session.begin() as s:
            result = await s.execute(
                delete(OutboxMail).where(
                    or_(
                        (OutboxMail.state == SENT) & (OutboxMail.sent_at < before),
                        (OutboxMail.state == PARKED) & (OutboxMail.created_at < before),
                    )
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]
