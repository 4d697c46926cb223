"""Round robin's last pick per department, in the database: every bridge
process continues the same rotation (read and written under the routing
lock, see :meth:`bots.routing.dispatcher.Dispatcher.deciding`)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select

from bridge.db.models import RoutingPointer
from bridge.db.tables import TableStore


class Pointers(TableStore):
    async def read(self) -> dict[str, str]:
        async with self.session() as s:
            rows = await s.scalars(select(RoutingPointer))
            return {row.department: row.mxid for row in rows}

    async def write(self, changed: Mapping[str, str]) -> None:
        """Store the departments' new last picks (one transaction)."""
        if not changed:
            return
        async with self.session.begin() as s:
            await s.execute(
                delete(RoutingPointer).where(RoutingPointer.department.in_(changed))
            )
            s.add_all(RoutingPointer(department=d, mxid=m) for d, m in changed.items())
