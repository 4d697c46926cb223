"""All reads and writes of the bridge database, as small async methods."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..clock import utcnow
from .models import (
    Case,
    CaseEvent,
    CaseToken,
    CaseTransition,
    SeenEvent,
    Transaction,
)
from .tables import TableStore

#: The cases routing counts: chats, and video calls (their staff are busy).
ROUTED_STATES = ("live", "queued", "in_call")
#: The first key of the PostgreSQL advisory locks that order a case's events.
CASE_WRITE_LOCKS = 0x6263  # "bc"


class Store(TableStore):
    """The core's tables: cases, tokens, the timeline, the appservice inbox."""

    async def close(self) -> None:
        await self.engine.dispose()

    # --- cases -------------------------------------------------------------

    async def create_case(
        self,
        *,
        case_id: str,
        reference_prefix: str,
        department: str,
        topic: str | None,
        language: str,
        citizen_name: str | None,
        ghost_mxid: str,
        state: str,
        invited: Sequence[str] = (),
        routed_at: datetime | None = None,
        client_key: str | None = None,
        room_id: str | None = None,
        opened: dict[str, Any] | None = None,
        with_opened: Callable[[CaseTransition], Sequence[Any]] | None = None,
    ) -> Case:
        """Insert a case; its reference (BC-2026-000123) is numbered by the
        database. With ``opened`` (the event's data) its ``opened`` domain event
        is written in the same transaction (see :mod:`bridge.lifecycle`), and
        the rows ``with_opened`` makes from it (the event's reaction jobs)."""
        now = utcnow()
        async with self.session.begin() as s:
            case = Case(
                case_id=case_id,
                reference=case_id,  # replaced below, once the number is known
                department=department,
                topic=topic,
                state=state,
                language=language,
                citizen_name=citizen_name,
                ghost_mxid=ghost_mxid,
                created_at=now,
                invited=list(invited),
                routed_at=routed_at,
                client_key=client_key,
                room_id=room_id,
            )
            s.add(case)
            await s.flush()
            case.reference = f"{reference_prefix}-{now.year}-{case.number:06d}"
            if opened is not None:
                event = CaseTransition(
                    case_id=case_id,
                    kind="opened",
                    from_state=None,
                    to_state=state,
                    data=dict(opened),
                    at=now,
                )
                s.add(event)
                if with_opened is not None:
                    await s.flush()
                    s.add_all(with_opened(event))
        return case

    async def get_case(self, case_id: str) -> Case | None:
        async with self.session() as s:
            return await s.scalar(select(Case).where(Case.case_id == case_id))

    async def case_by_room(self, room_id: str) -> Case | None:
        async with self.session() as s:
            return await s.scalar(select(Case).where(Case.room_id == room_id))

    async def cases_without_room(self) -> Sequence[Case]:
        async with self.session() as s:
            rows = await s.scalars(
                select(Case).where(Case.room_id.is_(None), Case.closed_at.is_(None))
            )
            return rows.all()

    async def update_case(self, case_id: str, **values: Any) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(Case).where(Case.case_id == case_id).values(**values)
            )

    async def routed_cases(self) -> Sequence[Case]:
        """Open live, queued and in-call cases, oldest first: what routing counts
        and queues (staff in a video appointment's call are busy)."""
        async with self.session() as s:
            rows = await s.scalars(
                select(Case)
                .where(Case.closed_at.is_(None), Case.state.in_(ROUTED_STATES))
                .order_by(Case.number)
            )
            return rows.all()

    async def unannounced_cases(self, opened_before: datetime) -> Sequence[Case]:
        """Open live and queued cases opened before ``opened_before`` whose team
        notice is still to be posted (few; the routing tick asks every 2 s)."""
        async with self.session() as s:
            rows = await s.scalars(
                select(Case)
                .where(
                    Case.closed_at.is_(None),
                    Case.state.in_(("live", "queued")),
                    Case.announced_at.is_(None),
                    Case.created_at <= opened_before,
                )
                .order_by(Case.number)
            )
            return rows.all()

    async def routed_summaries(self) -> Sequence[Any]:
        """Rows with ``case_id``, ``department``, ``state``, ``assignee`` and
        ``invited`` of the open live, queued and in-call cases: what routing
        counts for a new case, without loading whole cases (a new case must not
        get slower as more are open)."""
        async with self.session() as s:
            rows = await s.execute(
                select(
                    Case.case_id,
                    Case.department,
                    Case.state,
                    Case.assignee,
                    Case.invited,
                ).where(Case.closed_at.is_(None), Case.state.in_(ROUTED_STATES))
            )
            return rows.all()

    async def recent_cases(self, limit: int) -> Sequence[Case]:
        """The newest ``limit`` cases, any state (routing history)."""
        async with self.session() as s:
            rows = await s.scalars(
                select(Case).order_by(Case.number.desc()).limit(limit)
            )
            return rows.all()

    async def last_message_times(self) -> dict[str, datetime]:
        """When the last message (either side) of each open case was written."""
        async with self.session() as s:
            rows = await s.execute(
                select(CaseEvent.case_id, func.max(CaseEvent.ts))
                .join(Case, Case.case_id == CaseEvent.case_id)
                .where(Case.closed_at.is_(None), CaseEvent.type == "message")
                .group_by(CaseEvent.case_id)
            )
            return {case_id: ts for case_id, ts in rows.all()}

    async def last_move_times(self) -> dict[str, datetime]:
        """When each open case last changed state (a video call ending, say):
        activity as much as a message."""
        async with self.session() as s:
            rows = await s.execute(
                select(CaseTransition.case_id, func.max(CaseTransition.at))
                .join(Case, Case.case_id == CaseTransition.case_id)
                .where(Case.closed_at.is_(None), Case.state.in_(("live", "queued")))
                .group_by(CaseTransition.case_id)
            )
            return {case_id: at for case_id, at in rows.all()}

    async def first_citizen_message(self, case_id: str) -> str | None:
        async with self.session() as s:
            return await s.scalar(
                select(CaseEvent.body)
                .where(
                    CaseEvent.case_id == case_id,
                    CaseEvent.type == "message",
                    CaseEvent.sender == "citizen",
                )
                .order_by(CaseEvent.seq)
                .limit(1)
            )

    # --- tokens ------------------------------------------------------------

    async def add_token(
        self, case_id: str, token_hash: str, purpose: str, ttl: timedelta
    ) -> None:
        now = utcnow()
        async with self.session.begin() as s:
            s.add(
                CaseToken(
                    token_hash=token_hash,
                    case_id=case_id,
                    purpose=purpose,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )

    async def get_token(self, token_hash: str) -> CaseToken | None:
        async with self.session() as s:
            return await s.get(CaseToken, token_hash)

    async def extend_token(self, token_hash: str, expires_at: datetime) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(CaseToken)
                .where(CaseToken.token_hash == token_hash)
                .values(expires_at=expires_at)
            )

    async def revoke_tokens(self, case_id: str, purpose: str | None = None) -> int:
        """Revoke the case's live tokens (of one purpose); how many were revoked."""
        query = update(CaseToken).where(
            CaseToken.case_id == case_id, CaseToken.revoked_at.is_(None)
        )
        if purpose is not None:
            query = query.where(CaseToken.purpose == purpose)
        async with self.session.begin() as s:
            result = await s.execute(query.values(revoked_at=utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)

    # --- the citizen timeline ---------------------------------------------

    async def add_event(
        self,
        case_id: str,
        *,
        type: str,
        sender: str,
        body: str,
        sender_name: str | None = None,
        matrix_event_id: str | None = None,
        client_id: str | None = None,
        delivery: str = "delivered",
        ts: datetime | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[CaseEvent, bool]:
        """Append an event; returns (event, created). An event already known by its
        ``client_id`` or ``matrix_event_id`` is returned instead of a second one."""
        event = CaseEvent(
            case_id=case_id,
            type=type,
            sender=sender,
            sender_name=sender_name,
            body=body,
            ts=ts or utcnow(),
            client_id=client_id,
            matrix_event_id=matrix_event_id,
            delivery=delivery,
            extra=extra or {},
        )
        try:
            async with self.session.begin() as s:
                if self.engine.dialect.name == "postgresql":
                    # Cursors in commit order per case: a second writer of the
                    # case takes its cursor only once the first committed, so
                    # a reader never passes a lower cursor still uncommitted
                    # (SQLite has one writer at a time anyway). Two-key locks
                    # never meet the cluster's one-key locks (bridge.cluster).
                    await s.execute(
                        select(
                            func.pg_advisory_xact_lock(
                                CASE_WRITE_LOCKS, func.hashtext(case_id)
                            )
                        )
                    )
                s.add(event)
            return event, True
        except IntegrityError:
            async with self.session() as s:
                query = select(CaseEvent)
                if client_id is not None:
                    query = query.where(
                        CaseEvent.case_id == case_id, CaseEvent.client_id == client_id
                    )
                else:
                    query = query.where(CaseEvent.matrix_event_id == matrix_event_id)
                existing = await s.scalar(query)
            if existing is None:
                raise
            return existing, False

    async def mark_delivered(self, seq: int, matrix_event_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(CaseEvent)
                .where(CaseEvent.seq == seq)
                .values(matrix_event_id=matrix_event_id, delivery="delivered")
            )

    async def get_event(self, seq: int) -> CaseEvent | None:
        async with self.session() as s:
            return await s.get(CaseEvent, seq)

    async def pending_events(self, case_id: str) -> Sequence[CaseEvent]:
        """The case's citizen messages not yet in its room, oldest first."""
        async with self.session() as s:
            rows = await s.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.delivery == "pending")
                .order_by(CaseEvent.seq)
            )
            return rows.all()

    async def cases_with_pending_events(self) -> list[str]:
        async with self.session() as s:
            rows = await s.scalars(
                select(CaseEvent.case_id)
                .where(CaseEvent.delivery == "pending")
                .group_by(CaseEvent.case_id)
                .order_by(func.min(CaseEvent.seq))
            )
            return list(rows.all())

    async def events_after(
        self, case_id: str, after: int, limit: int = 200
    ) -> Sequence[CaseEvent]:
        async with self.session() as s:
            rows = await s.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.seq > after)
                .order_by(CaseEvent.seq)
                .limit(limit)
            )
            return rows.all()

    async def seq_of(self, case_id: str, event_ids: Sequence[str]) -> int | None:
        """The newest timeline cursor among these Matrix event ids (what a read
        receipt points at: everything up to it was read), if any is known."""
        if not event_ids:
            return None
        async with self.session() as s:
            found = await s.scalar(
                select(func.max(CaseEvent.seq)).where(
                    CaseEvent.case_id == case_id,
                    CaseEvent.matrix_event_id.in_(list(event_ids)),
                )
            )
            return int(found) if found is not None else None

    async def known_matrix_event(self, event_id: str) -> bool:
        async with self.session() as s:
            found = await s.scalar(
                select(CaseEvent.seq).where(CaseEvent.matrix_event_id == event_id)
            )
            return found is not None

    # --- appservice transactions ------------------------------------------

    async def save_transaction(
        self, txn_id: str, body: dict[str, Any]
    ) -> Transaction | None:
        """Persist a transaction (returned as stored); None if exactly this one
        (same id, same body) was stored before (a retry). The same id with
        another body is new work: Synapse renumbers its transactions after a
        restart."""
        txn = Transaction(
            txn_id=txn_id, body_hash=body_hash(body), body=body, received_at=utcnow()
        )
        try:
            async with self.session.begin() as s:
                s.add(txn)
            return txn
        except IntegrityError:
            return None

    async def unprocessed_transactions(self, limit: int = 50) -> Sequence[Transaction]:
        async with self.session() as s:
            rows = await s.scalars(
                select(Transaction)
                .where(Transaction.processed_at.is_(None))
                .order_by(Transaction.seq)
                .limit(limit)
            )
            return rows.all()

    async def mark_processed(self, seq: int, event_ids: Sequence[str] = ()) -> None:
        """The transaction is worked off; its events count as seen from now on.
        One database transaction, so a crash leaves both or neither."""
        now = utcnow()
        async with self.session.begin() as s:
            await s.execute(
                update(Transaction)
                .where(Transaction.seq == seq)
                .values(processed_at=now)
            )
            await _add_seen(s, event_ids, now)

    async def mark_seen(self, event_ids: Sequence[str]) -> None:
        """Events worked off outside a stored transaction (catch-up)."""
        async with self.session.begin() as s:
            await _add_seen(s, event_ids, utcnow())

    async def active_rooms(self, closed_within: timedelta) -> list[str]:
        """Rooms of cases that are open or closed only recently (catch-up)."""
        since = utcnow() - closed_within
        async with self.session() as s:
            rows = await s.scalars(
                select(Case.room_id).where(
                    Case.room_id.is_not(None),
                    (Case.closed_at.is_(None)) | (Case.closed_at > since),
                )
            )
            return [r for r in rows.all() if r]

    async def seen_events(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the inbox has worked off before."""
        if not event_ids:
            return set()
        async with self.session() as s:
            rows = await s.scalars(
                select(SeenEvent.event_id).where(SeenEvent.event_id.in_(event_ids))
            )
            return set(rows.all())

    async def newest_seen_at(self) -> datetime | None:
        """When the inbox last worked off an event (where a catch-up begins)."""
        async with self.session() as s:
            return await s.scalar(select(func.max(SeenEvent.seen_at)))

    async def prune_inbox(
        self, *, transactions_older_than: datetime, events_older_than: datetime
    ) -> tuple[int, int]:
        """Bound the dedup tables: worked-off transactions and seen event ids past
        their age are deleted. Returns how many of each."""
        async with self.session.begin() as s:
            txns = await s.execute(
                delete(Transaction).where(
                    Transaction.processed_at.is_not(None),
                    Transaction.processed_at < transactions_older_than,
                )
            )
            events = await s.execute(
                delete(SeenEvent).where(SeenEvent.seen_at < events_older_than)
            )
        return (
            int(getattr(txns, "rowcount", 0) or 0),
            int(getattr(events, "rowcount", 0) or 0),
        )

    async def inbox_lag(self) -> tuple[int, datetime | None]:
        """How many transactions wait to be worked off, and since when."""
        async with self.session() as s:
            row = (
                await s.execute(
                    select(func.count(), func.min(Transaction.received_at)).where(
                        Transaction.processed_at.is_(None)
                    )
                )
            ).one()
        return int(row[0]), row[1]


async def _add_seen(s: AsyncSession, event_ids: Sequence[str], now: datetime) -> None:
    """Record event ids as seen (those already recorded are left as they are)."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return
    known = set(
        (
            await s.scalars(
                select(SeenEvent.event_id).where(SeenEvent.event_id.in_(ids))
            )
        ).all()
    )
    s.add_all(SeenEvent(event_id=e, seen_at=now) for e in ids if e not in known)


def body_hash(body: dict[str, Any]) -> str:
    """SHA-256 of a transaction body in canonical JSON (key order does not count)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
