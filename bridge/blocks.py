"""Who opened a case, without keeping the address, and blocks.

A client address is kept only as its *client key*: an HMAC-SHA256 under a
secret of this installation (``client_key_secret`` in the data folder's
secrets.yaml). Cases from one address share a key, so a burst of chats can be
summarised for staff and an admin's ``!block`` can stop the address — yet the
database holds no address, and the key means nothing without the secret.

A block names a client key (the address) and a case, has a reason and who set
it, and runs out after ``limits.block_hours`` (shared connections — a library's
Wi-Fi, a carrier's NAT — must not stay shut). ``!unblock`` lifts it earlier.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import as_utc, utcnow
from .db.models import Block, Case
from .db.tables import TableStore
from .errors import Blocked


class Blocks(TableStore):
    def __init__(self, engine: AsyncEngine, secret: str, hours: float) -> None:
        super().__init__(engine)
        self._secret = secret.encode("utf-8")
        self.duration = timedelta(hours=hours)

    def key(self, address: str) -> str:
        return hmac.new(
            self._secret, address.encode("utf-8"), hashlib.sha256
        ).hexdigest()

    async def active(self, client_key: str | None) -> Block | None:
        if not client_key:
            return None
        async with self.session() as s:
            return await s.scalar(
                select(Block)
                .where(
                    Block.client_key == client_key,
                    Block.lifted_at.is_(None),
                    Block.expires_at > utcnow(),
                )
                .order_by(Block.expires_at.desc())
                .limit(1)
            )

    async def check(self, client_key: str | None) -> None:
        """Blocked (403) while an admin's block of this address runs."""
        block = await self.active(client_key)
        if block is not None:
            raise Blocked(until=as_utc(block.expires_at).isoformat())

    async def block(self, case: Case, *, reason: str, actor: str) -> Block:
        now = utcnow()
        row = Block(
            client_key=case.client_key,
            case_id=case.case_id,
            reason=reason,
            actor=actor,
            created_at=now,
            expires_at=now + self.duration,
        )
        async with self.session.begin() as s:
            s.add(row)
        return row

    async def lift(self, case: Case) -> int:
        """Lift the blocks of this case and of its address; how many ran."""
        conditions = [Block.case_id == case.case_id]
        if case.client_key:
            conditions.append(Block.client_key == case.client_key)
        async with self.session.begin() as s:
            done = await s.execute(
                update(Block)
                .where(or_(*conditions), Block.lifted_at.is_(None))
                .where(Block.expires_at > utcnow())
                .values(lifted_at=utcnow())
            )
        return int(getattr(done, "rowcount", 0) or 0)

    async def cases_since(self, client_key: str, since: datetime) -> list[Case]:
        """The cases this address opened since ``since``, oldest first."""
        async with self.session() as s:
            rows = await s.scalars(
                select(Case)
                .where(Case.client_key == client_key, Case.created_at >= since)
                .order_by(Case.number)
            )
            return list(rows)

    async def count(self) -> int:
        async with self.session() as s:
            found = await s.scalar(
                select(func.count())
                .select_from(Block)
                .where(Block.lifted_at.is_(None), Block.expires_at > utcnow())
            )
        return int(found or 0)
