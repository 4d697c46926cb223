"""The offline bot's part in data protection (bridge.privacy): the form a
citizen filled in (name, e-mail, phone, message). Its row goes with the case;
the part finds a person's cases by e-mail address and adds the form to an
export."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from bridge.db.models import Case
from bridge.privacy.parts import Export, Part
from bridge.synapse_admin import SynapseAdmin

from .models import OfflineRecord
from .store import OfflineStore


class OfflinePrivacy:
    def __init__(self, records: OfflineStore) -> None:
        self.records = records

    def part(self) -> Part:
        return Part(
            "offline",
            erase=self.erase,
            export=self.export,
            cases_of_email=self.cases_of_email,
        )

    async def _of_case(self, case_id: str) -> OfflineRecord | None:
        async with self.records.session() as s:
            return await s.scalar(
                select(OfflineRecord).where(OfflineRecord.case_id == case_id)
            )

    async def cases_of_email(self, address: str) -> Sequence[str]:
        async with self.records.session() as s:
            rows = await s.scalars(
                select(OfflineRecord.case_id).where(
                    func.lower(OfflineRecord.email) == address.strip().lower(),
                    OfflineRecord.case_id.is_not(None),
                )
            )
            return [r for r in rows if r]

    async def erase(self, case: Case, action: str) -> dict[str, int]:
        # The row goes with the case (ON DELETE CASCADE); counted for the audit.
        return {"offline_messages": int(await self._of_case(case.case_id) is not None)}

    async def export(
        self, case: Case, bundle: Export, admin: SynapseAdmin | None
    ) -> None:
        record = await self._of_case(case.case_id)
        if record is None:
            return
        bundle.data["offline_message"] = {
            "name": record.name,
            "email": record.email,
            "phone": record.phone,
            "topic": record.topic,
            "message": record.description,
            "left": record.created_at.isoformat(),
        }
