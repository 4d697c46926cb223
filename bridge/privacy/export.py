"""An Art. 15 export: what Bürgerchat holds about a case, as data.json, and
writing the zip."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..clock import as_utc
from ..db.models import Case, CaseEvent, CaseTransition
from .parts import Export, Part
from .settings import CASE_PERIODS

if TYPE_CHECKING:
    from ..config import Config
    from ..db.store import Store
    from ..mail.outbox import Outbox
    from ..synapse_admin import SynapseAdmin


async def case_data(
    config: Config, store: Store, mail: Outbox, case: Case
) -> dict[str, Any]:
    async with store.session() as s:
        events = list(
            await s.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id == case.case_id)
                .order_by(CaseEvent.seq)
            )
        )
        moves = list(
            await s.scalars(
                select(CaseTransition)
                .where(CaseTransition.case_id == case.case_id)
                .order_by(CaseTransition.id)
            )
        )
    mails = await mail.store.of_case(case.case_id)
    return {
        "case": _case(case),
        "messages": [
            {
                "at": as_utc(e.ts).isoformat(),
                "from": e.sender,
                "name": e.sender_name,
                "type": e.type,
                "text": e.body,
            }
            for e in events
        ],
        "history": [
            {"at": as_utc(m.at).isoformat(), "what": m.kind, "state": m.to_state}
            for m in moves
        ],
        "mails": [
            {
                "subject": m.subject,
                "to": list(m.recipients or []),
                "state": m.state,
                "sent": as_utc(m.sent_at).isoformat() if m.sent_at else None,
                "text": mail_text(m.raw),
            }
            for m in mails
        ],
        "retention": {
            name: getattr(config.case_retention(case.department), name)
            for name in CASE_PERIODS
        },
    }


async def collect_export(
    config: Config,
    store: Store,
    mail: Outbox,
    parts: Sequence[Part],
    cases: Sequence[Case],
    admin: SynapseAdmin | None,
) -> dict[str, bytes]:
    """The zip's files: per case ``data.json`` (the case, the form, the messages
    the citizen saw, the mails), what the bots' parts add (transcript PDF,
    files), and a README."""
    files: dict[str, bytes] = {}
    for case in cases:
        bundle = Export(data=await case_data(config, store, mail, case))
        for part in parts:
            if part.export is not None:
                await part.export(case, bundle, admin)
        files[f"{case.reference}/data.json"] = json.dumps(
            bundle.data, ensure_ascii=False, indent=2, default=str
        ).encode()
        for name, content in bundle.files.items():
            files[f"{case.reference}/{name}"] = content
    references = [c.reference for c in cases]
    files["README.txt"] = export_readme(config, references).encode()
    return files


def _case(case: Case) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "department": case.department,
        "topic": case.topic,
        "state": case.state,
        "language": case.language,
        "name": case.citizen_name,
        "opened": as_utc(case.created_at).isoformat(),
        "closed": as_utc(case.closed_at).isoformat() if case.closed_at else None,
    }


def mail_text(raw: bytes | None) -> str | None:
    if not raw:
        return None
    message = message_from_bytes(raw, policy=policy.default)
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(body.get_content()) if body is not None else None


def write_zip(out: Path, files: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.touch(mode=0o600)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in sorted(files.items()):
            z.writestr(name, content)
    tmp.replace(out)


def export_readme(config: Config, references: Sequence[str]) -> str:
    return (
        f"Auskunft nach Art. 15 DSGVO – {config.town.name}\n\n"
        "Dieses Archiv enthält alle Daten, die Bürgerchat zu den folgenden Fällen "
        "gespeichert hat:\n"
        + "".join(f"  {r}\n" for r in references)
        + "\nJe Fall: data.json (der Fall, Ihre Angaben, die Nachrichten, die Sie "
        "gesehen haben, die E-Mails an Sie und wie lange alles aufbewahrt wird), "
        "das Gesprächsprotokoll als PDF und die Dateien, die Sie geschickt oder "
        "bekommen haben.\n"
    )
