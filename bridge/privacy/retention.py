"""When a case's retention period ends (``retention:`` in buergerchat.yaml,
per department in departments.yaml): the selection the daily sweep and
``buergerchat retention`` share."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ..clock import as_utc
from ..db.models import Case, CaseEvent, CaseTransition
from ..lifecycle import State

if TYPE_CHECKING:
    from ..config import Config
    from ..db.store import Store


async def expired_cases(
    store: Store, config: Config, now: datetime
) -> list[tuple[Case, str]]:
    """Cases whose retention period ended by ``now``, with the period's name."""
    found = []
    for case, kind, end in await case_ends(store):
        if end + config.case_retention(case.department).days(kind) <= now:
            found.append((case, kind))
    return found


async def case_ends(store: Store) -> list[tuple[Case, str, datetime]]:
    """Each case that can expire (closed, purged half-way, or an offline
    message still open), the period that applies and when it ended."""
    async with store.session() as s:
        cases = list(
            await s.scalars(
                select(Case).where(
                    Case.state.in_(
                        (State.CLOSED.value, State.OFFLINE.value, State.PURGED.value)
                    )
                )
            )
        )
        offline = set(
            await s.scalars(
                select(CaseTransition.case_id)
                .where(CaseTransition.to_state == State.OFFLINE.value)
                .distinct()
            )
        )
        answered = set(
            await s.scalars(
                select(CaseEvent.case_id).where(CaseEvent.sender == "staff").distinct()
            )
        )
        last = dict(
            (
                await s.execute(
                    select(CaseEvent.case_id, func.max(CaseEvent.ts)).group_by(
                        CaseEvent.case_id
                    )
                )
            ).all()
        )
    ends = []
    for case in cases:
        if case.case_id in offline:
            kind = (
                "offline_answered_days"
                if case.case_id in answered
                else "offline_unanswered_days"
            )
        else:
            kind = "chats_days"
        if case.closed_at is not None:
            end = as_utc(case.closed_at)
        elif kind == "offline_unanswered_days":
            end = as_utc(case.created_at)
        else:
            end = as_utc(last.get(case.case_id) or case.created_at)
        ends.append((case, kind, end))
    return ends
