"""``buergerchat verify-transcript``: recompute a case's hash chain from Synapse's
events now and compare it with the hash stored on the case and in the PDF."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

from mautrix.api import HTTPAPI
from mautrix.client import ClientAPI
from mautrix.errors import MatrixError
from mautrix.types import ContentURI, UserID
from sqlalchemy import or_, select

from bridge.config import Config
from bridge.db.engine import create_engine, database_url
from bridge.db.models import Case
from bridge.db.store import Store
from bridge.homeserver import load_secrets
from bridge.plugins import CliCommand

from .archives import Archives
from .chain import final_hash
from .models import TranscriptArchive
from .render import stored_final_hash
from .sources import MediaUnavailable, case_entries
from .timeline import case_info


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def verify_transcript() -> CliCommand:
    """The subcommand (entry point ``buergerchat.cli: verify-transcript``)."""
    return CliCommand(
        "verify-transcript",
        "recompute a case's transcript hash from Synapse and compare",
        configure,
        run,
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", help="case reference (BC-2026-000123) or case id")
    parser.add_argument(
        "--pdf",
        type=Path,
        help="the PDF to check (default: <transcripts.archive_dir>/<reference>.pdf)",
    )


def run(config: Config, args: argparse.Namespace) -> int:
    verdict = asyncio.run(verify_case(config, args.case, args.pdf))
    for line in verdict.lines:
        print(line)
    return 0 if verdict.ok else 1


async def verify_case(config: Config, key: str, pdf: Path | None) -> Verdict:
    """Compare the chain of the case as it is now with what was stored."""
    store = Store(create_engine(database_url(config.bridge.database, config.data_dir)))
    try:
        async with store.session() as s:
            case: Case | None = await s.scalar(
                select(Case).where(or_(Case.reference == key, Case.case_id == key))
            )
        if case is None:
            return Verdict(False, [f"Kein Fall {key} gefunden."])
        if not case.room_id:
            return Verdict(False, [f"Fall {case.reference} hat keinen Chatraum."])
        try:
            now = await _chain_now(config, store, case)
        except (MatrixError, MediaUnavailable, OSError, TimeoutError) as e:
            return Verdict(
                False,
                [
                    f"Fall {case.reference}: der Verlauf konnte nicht aus Synapse "
                    f"gelesen werden ({e}). Läuft Synapse? Dann erneut versuchen."
                ],
            )
    finally:
        await store.close()
    archived = await Archives(store.engine).get(case.case_id)
    return _compare(config, case, archived, now, pdf)


async def _chain_now(config: Config, store: Store, case: Case) -> Chains:
    api = HTTPAPI(
        config.homeserver.url,
        load_secrets(config.data_dir)["as_token"],
        as_user_id=UserID(config.bot_mxid),
    )
    client = ClientAPI(UserID(config.bot_mxid), api=api)
    try:
        history = await asyncio.wait_for(
            case_entries(
                api,
                store,
                config,
                case,
                lambda url: client.download_media(ContentURI(url)),
                missing_ok=False,
            ),
            timeout=300,
        )
    finally:
        await api.session.close()

    def chain(internal: bool) -> str:
        entries = history.copy(internal)
        return final_hash(case_info(config, case, entries, internal), entries)

    return Chains(chain(True), chain(False))


@dataclass(frozen=True)
class Chains:
    """The chain of each copy as Synapse's events give it now."""

    archive: str
    citizen: str


def archived_pdf(
    config: Config, case: Case, archived: TranscriptArchive | None
) -> Path:
    """Where the archive keeps the case's PDF: the configured folder, or where
    it was filed if the folder has been changed since."""
    configured = config.plugin("transcripts").archive_dir / f"{case.reference}.pdf"
    stored = archived.path if archived else None
    if not configured.is_file() and stored and Path(stored).is_file():
        return Path(stored)
    return configured


def _compare(
    config: Config,
    case: Case,
    archived: TranscriptArchive | None,
    chains: Chains,
    pdf: Path | None,
) -> Verdict:
    now = chains.archive
    lines = [
        f"Fall {case.reference}: Prüfsumme aus Synapse jetzt {now} (Archiv), "
        f"{chains.citizen} (Ausfertigung für Bürger*in)"
    ]
    problems: list[str] = []
    expected = archived.final_hash if archived else None
    if expected:
        lines.append(f"  gespeichert beim Fall:  {expected}")
        if expected != now:
            problems.append(
                "der Verlauf in Synapse passt nicht zur gespeicherten Prüfsumme"
            )
    elif pdf is None:
        problems.append("es ist keine Prüfsumme gespeichert (Fall nicht archiviert?)")
    pdf = pdf or archived_pdf(config, case, archived)
    if not pdf.is_file():
        problems.append(f"die PDF-Datei {pdf} fehlt")
    else:
        in_pdf = stored_final_hash(pdf.read_bytes())
        lines.append(f"  in der PDF {pdf}: {in_pdf}")
        if in_pdf == chains.citizen:
            lines.append("  die PDF ist die Ausfertigung für Bürger*in")
        elif in_pdf != now:
            problems.append("die PDF-Datei passt nicht zum Verlauf in Synapse")
        elif expected and in_pdf != expected:
            problems.append("die PDF-Datei passt nicht zur gespeicherten Prüfsumme")
    if problems:
        lines.append("VERÄNDERT: " + "; ".join(problems) + ".")
        return Verdict(False, lines)
    lines.append("Ergebnis: stimmt überein.")
    return Verdict(True, lines)
