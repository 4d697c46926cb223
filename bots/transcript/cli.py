"""``buergerchat verify-transcript``: recompute a case's hash chain from Synapse's
events now and compare it with the hash stored on the case and in the PDF."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

from mautrix.api import HTTPAPI
from mautrix.types import UserID
from sqlalchemy import or_, select

from bridge.config import Config
from bridge.db.engine import create_engine, database_url
from bridge.db.models import Case
from bridge.db.store import Store
from bridge.homeserver import load_secrets

from .chain import final_hash
from .render import stored_final_hash
from .timeline import case_info, entries_from_events, room_events


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", help="case reference (BC-2026-000123) or case id")
    parser.add_argument(
        "--pdf", type=Path, help="the PDF to check (default: the archived one)"
    )


def run(config: Config, args: argparse.Namespace) -> int:
    verdict = asyncio.run(verify_case(config, args.case, args.pdf))
    for line in verdict.lines:
        print(line)
    return 0 if verdict.ok else 1


async def _find_case(config: Config, key: str) -> Case | None:
    store = Store(create_engine(database_url(config.bridge.database, config.data_dir)))
    try:
        async with store.session() as s:
            found: Case | None = await s.scalar(
                select(Case).where(or_(Case.reference == key, Case.case_id == key))
            )
            return found
    finally:
        await store.close()


async def verify_case(config: Config, key: str, pdf: Path | None) -> Verdict:
    """Compare the chain of the room as it is now with what was stored."""
    case = await _find_case(config, key)
    if case is None:
        return Verdict(False, [f"Kein Fall {key} gefunden."])
    if not case.room_id:
        return Verdict(False, [f"Fall {case.reference} hat keinen Chatraum."])
    stored = (case.extra or {}).get("transcript") or {}
    pdf = pdf or (Path(stored["path"]) if stored.get("path") else None)
    api = HTTPAPI(
        config.homeserver.url,
        load_secrets(config.data_dir)["as_token"],
        as_user_id=UserID(config.bot_mxid),
    )
    try:
        events = await asyncio.wait_for(room_events(api, case.room_id), timeout=120)
    finally:
        await api.session.close()
    entries = entries_from_events(events, config=config, case=case)
    now = final_hash(case_info(config, case, entries), entries)
    lines = [f"Fall {case.reference}: Prüfsumme aus Synapse jetzt {now}"]
    problems: list[str] = []
    expected = stored.get("final_hash")
    if expected:
        lines.append(f"  gespeichert beim Fall:  {expected}")
        if expected != now:
            problems.append(
                "der Verlauf in Synapse passt nicht zur gespeicherten Prüfsumme"
            )
    if pdf is not None:
        if not pdf.is_file():
            problems.append(f"die PDF-Datei {pdf} fehlt")
        else:
            in_pdf = stored_final_hash(await asyncio.to_thread(pdf.read_bytes))
            lines.append(f"  in der PDF {pdf}: {in_pdf}")
            if in_pdf != now:
                problems.append("die PDF-Datei passt nicht zum Verlauf in Synapse")
            if expected and in_pdf != expected:
                problems.append("die PDF-Datei passt nicht zur gespeicherten Prüfsumme")
    if not expected and pdf is None:
        problems.append("es ist keine Prüfsumme gespeichert (Fall nicht archiviert?)")
    if problems:
        lines.append("VERÄNDERT: " + "; ".join(problems) + ".")
        return Verdict(False, lines)
    lines.append("Ergebnis: stimmt überein.")
    return Verdict(True, lines)
