"""The scanner bot's plain parts: its settings, the attachment queue in the database,
files held on disk, retry backoff and the Matrix content of a delivered file."""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bridge.clock import utcnow
from bridge.db.tables import TableStore
from bridge.errors import HOMESERVER_ERRORS, BuergerchatError
from bridge.jobs import backoff
from bridge.yamlconf import Section

from .clamd_client import ClamdClient, address_problem
from .content import DEFAULT_ALLOWED, expand_kinds
from .models import Attachment

#: Retry delays grow 5 s, 10 s, 20 s … up to 10 minutes.
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 600.0
#: What a call to Synapse fails with when it is away; the file then stays held.
MATRIX_ERRORS = HOMESERVER_ERRORS


class InfectedFile(BuergerchatError):
    """The scanner found malware; the file was not delivered."""

    errcode = "BC_INFECTED"


@dataclass(frozen=True)
class ScannerSettings:
    #: ``embedded`` (the bot runs its own clamd), ``tcp://host:port`` or ``unix:/path``.
    clamd: str
    scan_timeout: float
    give_up_after: timedelta
    allowed: frozenset[str]
    max_size: int
    #: Synapse refuses infected uploads itself (synapse/modules/buergerchat_scan.py).
    synapse_module: bool = True
    #: A file holding a Synapse admin's access token, for quarantining infected
    #: staff uploads on an external homeserver (relative: to the config folder).
    admin_token_file: str | None = None

    def external_client(self) -> ClamdClient:
        """A client for an external clamd, as given in ``scanner.clamd``."""
        return ClamdClient.from_address(
            self.clamd,
            scan_timeout=self.scan_timeout,
            max_stream_length=self.max_size,
        )

    def clamd_address(self, data_dir: Path) -> str:
        """Where clamd listens, also for an embedded one (its socket in the data
        folder), in the form the Synapse module reads."""
        if self.clamd == "embedded":
            return f"unix:{embedded_socket(data_dir)}"
        return self.clamd


def embedded_socket(data_dir: Path) -> Path:
    """The unix socket of the clamd that the bot starts itself."""
    return data_dir / "clamd" / "clamd.sock"


def _clamd_address(value: str) -> str | None:
    if value == "embedded":
        return None
    problem = address_problem(value)
    return problem and problem.replace("must be", "must be 'embedded',", 1)


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def read_settings(section: Section, max_upload_size_mb: int) -> ScannerSettings:
    """The ``scanner:`` section of buergerchat.yaml; problems are recorded with
    file, line and key (bridge/config.py calls this while loading)."""
    clamd = section.get("clamd", str, "embedded", check=_clamd_address)
    timeout = section.get("scan_timeout_seconds", float, 60.0, check=_positive)
    give_up = section.get("give_up_after_hours", float, 24.0, check=_positive)
    module = section.get("synapse_module", bool, True)
    token_file = section.get("admin_token_file", str, None)
    kinds = DEFAULT_ALLOWED
    if section.has("allowed"):
        chosen: set[str] = set()
        for item in section.items("allowed"):
            try:  # one by one, so a problem names the entry's own line
                chosen |= expand_kinds([str(item.value)])
            except ValueError as e:
                item.error(str(e))
        kinds = frozenset(chosen)
    section.finish()
    return ScannerSettings(
        clamd=clamd or "embedded",
        scan_timeout=timeout or 60.0,
        give_up_after=timedelta(hours=give_up or 24.0),
        allowed=kinds,
        max_size=max_upload_size_mb << 20,
        synapse_module=True if module is None else bool(module),
        admin_token_file=token_file or None,
    )


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before scan attempt number ``attempts + 1`` (the job
    queue's one backoff rule, without spread: files are few)."""
    return backoff(
        attempts,
        base=timedelta(seconds=FIRST_RETRY_S),
        cap=timedelta(seconds=MAX_RETRY_S),
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_attachment_id() -> str:
    return "att_" + secrets.token_urlsafe(16)


# --- files held on disk -------------------------------------------------------


def hold(held_dir: Path, attachment_id: str, data: bytes) -> Path:
    """Write the file durably before anything else happens to it (call in a thread)."""
    held_dir.mkdir(parents=True, exist_ok=True)
    path = held_dir / attachment_id
    partial = path.with_suffix(".part")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(path)
    return path


def release(path: str | None) -> None:
    """Delete a held file once it is delivered or refused (call in a thread)."""
    if path:
        Path(path).unlink(missing_ok=True)


# --- the attachment queue -----------------------------------------------------


class AttachmentQueue(TableStore):
    """Reads and writes of the attachments table, on the bridge's store."""

    async def add(self, **values: Any) -> tuple[Attachment, bool]:
        """Insert; an attachment already known by client id or Matrix event id is
        returned instead, with ``created`` False."""
        now = utcnow()
        row = Attachment(attempts=0, created_at=now, updated_at=now, **values)
        try:
            async with self.session.begin() as s:
                s.add(row)
            return row, True
        except IntegrityError:
            query = select(Attachment)
            if values.get("client_id") is not None:
                query = query.where(
                    Attachment.case_id == values["case_id"],
                    Attachment.client_id == values["client_id"],
                )
            else:
                query = query.where(
                    Attachment.matrix_event_id == values.get("matrix_event_id")
                )
            async with self.session() as s:
                existing = await s.scalar(query)
            if existing is None:
                raise
            return existing, False

    async def by_client_id(self, case_id: str, client_id: str) -> Attachment | None:
        async with self.session() as s:
            return await s.scalar(
                select(Attachment).where(
                    Attachment.case_id == case_id, Attachment.client_id == client_id
                )
            )

    async def get(self, case_id: str, attachment_id: str) -> Attachment | None:
        async with self.session() as s:
            return await s.scalar(
                select(Attachment).where(
                    Attachment.case_id == case_id,
                    Attachment.attachment_id == attachment_id,
                )
            )

    async def refresh(self, row: Attachment) -> None:
        """Bring ``row`` up to what the database has now (another task may have
        moved it on while we waited)."""
        async with self.session() as s:
            fresh = await s.get(Attachment, row.id)
            if fresh is None:
                return
            for column in Attachment.__table__.columns:
                setattr(row, column.key, getattr(fresh, column.key))

    async def update(self, row: Attachment, **values: Any) -> None:
        values["updated_at"] = utcnow()
        async with self.session.begin() as s:
            await s.execute(
                update(Attachment).where(Attachment.id == row.id).values(**values)
            )
        for key, value in values.items():
            setattr(row, key, value)

    async def held_count(self) -> int:
        async with self.session() as s:
            value = await s.scalar(
                select(func.count()).where(Attachment.state.in_(("pending", "clean")))
            )
        return int(value or 0)

    async def held(self) -> list[Attachment]:
        """Held attachments: ``pending`` ones wait for a scan, ``clean`` ones for
        Synapse to take them."""
        async with self.session() as s:
            rows = await s.scalars(
                select(Attachment)
                .where(Attachment.state.in_(("pending", "clean")))
                .order_by(Attachment.id)
            )
            return list(rows.all())


# --- what a delivered file looks like in Matrix ---------------------------------


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG from its header; None if unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
    return None


def message_content(
    row: Attachment, mxc: str, data: bytes, scanned_at: datetime
) -> dict[str, Any]:
    """``m.image`` or ``m.file`` content with the scan verdict and hash."""
    info: dict[str, Any] = {"mimetype": row.mimetype, "size": row.size}
    msgtype = "m.file"
    if row.mimetype.startswith("image/"):
        msgtype = "m.image"
        size = image_size(data)
        if size:
            info["w"], info["h"] = size
    return {
        "msgtype": msgtype,
        "body": row.filename,
        "filename": row.filename,
        "url": mxc,
        "info": info,
        "de.buergerchat.attachment_id": row.attachment_id,
        "de.buergerchat.scan": {
            "verdict": "clean",
            "sha256": row.sha256,
            "scanned_at": scanned_at.isoformat().replace("+00:00", "Z"),
        },
    }
