"""Synapse module: every upload to the media repository is scanned by clamd first.

Defense in depth next to the scanner bot: the bot scans what crosses a case room,
this module refuses an infected file at upload from any client, in any room or none.
It asks the same scanner core (``bots.scanner.clamd_client``, INSTREAM with deadlines)
and fails closed: no verdict, no upload.

Enabled in homeserver.yaml (``buergerchat run`` renders this from
``synapse/homeserver.yaml.tmpl``; this folder must be on Synapse's PYTHONPATH)::

    modules:
      - module: buergerchat_scan.BuergerchatScan
        config:
          clamd: "unix:/data/clamd/clamd.sock"    # or "tcp://clamd:3310"
          scan_timeout_seconds: 60
          max_upload_size: 20971520               # bytes, = Synapse's max_upload_size

Synapse calls ``check_media_file_for_spam`` on its reactor thread; the scan runs in
Synapse's thread pool (``ModuleApi.defer_to_thread``) with its own asyncio loop, so
neither a slow clamd nor the file read blocks the reactor.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synapse.api.errors import Codes, SynapseError
from synapse.module_api import NOT_SPAM, ModuleApi

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.verdict import Clean, Infected, ScanError, ScanTooLarge, Verdict

logger = logging.getLogger(__name__)


class ConfigError(Exception):
    """The module's config in homeserver.yaml is wrong; the message names the key."""


@dataclass(frozen=True)
class ScanConfig:
    client: ClamdClient


class BuergerchatScan:
    """Registers the media spam check with Synapse."""

    def __init__(self, config: ScanConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        api.register_spam_checker_callbacks(
            check_media_file_for_spam=self.check_media_file_for_spam
        )
        logger.info("scanning every upload with clamd at %s", config.client.address)

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ScanConfig:
        def key(name: str) -> str:
            return f"modules[buergerchat_scan.BuergerchatScan].config.{name}"

        address = config.get("clamd")
        if not isinstance(address, str):
            raise ConfigError(f"{key('clamd')}: required, e.g. 'tcp://clamd:3310'")
        timeout = config.get("scan_timeout_seconds", 60)
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"{key('scan_timeout_seconds')}: must be > 0")
        limit = config.get("max_upload_size")
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise ConfigError(f"{key('max_upload_size')}: must be bytes > 0")
        try:
            client = ClamdClient.from_address(
                address, scan_timeout=float(timeout), max_stream_length=limit
            )
        except ValueError as e:
            raise ConfigError(f"{key('clamd')}: {e}") from None
        return ScanConfig(client)

    async def check_media_file_for_spam(
        self, file_wrapper: Any, file_info: Any
    ) -> Literal["NOT_SPAM"]:
        """Clean → NOT_SPAM; infected or no verdict → a SynapseError the uploader
        sees (Synapse deletes the stored file when this raises)."""
        if getattr(file_info, "thumbnail", None):
            # Made by Synapse from a file that was scanned at upload.
            return NOT_SPAM
        path = Path(file_wrapper.path)
        try:
            verdict = await self._api.defer_to_thread(
                scan_file, self._config.client, path
            )
        except ScanTooLarge as e:
            logger.warning("refused %s: %s", file_info.file_id, e)
            raise SynapseError(
                413,
                "Die Datei ist zu groß für die Virenprüfung. / The file is larger "
                "than the virus scanner accepts; send a smaller one.",
                Codes.TOO_LARGE,
            ) from None
        except (ScanError, OSError) as e:
            # Fail closed: without a verdict nothing enters the media repository.
            logger.error("no scan verdict for %s, upload refused: %s", path, e)
            raise SynapseError(
                503,
                "Die Datei konnte gerade nicht auf Schadsoftware geprüft werden; "
                "bitte später erneut senden. / The virus scanner is unavailable; "
                "the upload was refused, please try again later.",
                Codes.UNKNOWN,
            ) from None
        if isinstance(verdict, Infected):
            logger.warning(
                "refused upload %s: %s", file_info.file_id, verdict.signature
            )
            raise SynapseError(
                403,
                f"Die Datei enthält Schadsoftware ({verdict.signature}) und wurde "
                "abgewiesen. / The file contains malware and was refused.",
                Codes.FORBIDDEN,
                additional_fields={"de.buergerchat.signature": verdict.signature},
            )
        assert isinstance(verdict, Clean)
        return NOT_SPAM


def scan_file(client: ClamdClient, path: Path) -> Verdict:
    """Read and scan one file; runs in a worker thread with a loop of its own."""
    data = path.read_bytes()
    return asyncio.run(client.scan(data))
