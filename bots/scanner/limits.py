"""Size limits that must agree: Synapse's ``max_upload_size`` ≤ clamd's
``StreamMaxLength`` ≤ ``MaxFileSize``.

If Synapse accepts more than clamd reads, a large staff file can never be scanned
(it is refused, not passed, but the staff member is surprised); if clamd's
``MaxFileSize`` is below its stream limit, clamd does not scan the rest of a large
file at all. The embedded clamd is configured from ``homeserver.max_upload_size_mb``
(:class:`~bots.scanner.clamd_runner.ClamdLimits`); for an external clamd and an
external Synapse these checks ask the running servers at start.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import aiohttp

from bridge.errors import BuergerchatError

from .clamd_client import ClamdClient
from .verdict import Infected, ScanError, ScanTooLarge

log = logging.getLogger("buergerchat.scanner")
_TIMEOUT = aiohttp.ClientTimeout(total=30)
# clamd names a file it could not scan completely (AlertExceedsMax) like this.
_LIMIT_SIGNATURE = "Heuristics.Limits.Exceeded"


class LimitsInconsistent(BuergerchatError):
    """The upload limit and clamd's or Synapse's limits disagree; start refused."""

    errcode = "BC_LIMITS_INCONSISTENT"


async def check_clamd_accepts(client: ClamdClient, max_upload: int) -> bool:
    """Stream ``max_upload`` zero bytes to clamd: it must take them all and scan
    them. Raises LimitsInconsistent if clamd's StreamMaxLength or MaxFileSize is
    smaller; returns False (and logs) if clamd cannot be reached to check."""
    # No limit of our own: the point is to see what clamd itself allows.
    probe = dataclasses.replace(client, max_stream_length=None)
    limit = f"homeserver.max_upload_size_mb ({max_upload >> 20} MB)"
    try:
        verdict = await probe.scan(bytes(max_upload))
    except ScanTooLarge:
        raise LimitsInconsistent(
            f"clamd at {client.address} refuses streams of {limit}: its "
            f"StreamMaxLength is smaller. Set StreamMaxLength and MaxFileSize in "
            f"clamd.conf to at least {max_upload >> 20}M, or lower {limit}."
        ) from None
    except ScanError as e:
        log.warning(
            "clamd limits not checked, clamd is not reachable now (%s); files wait "
            "for it and are never passed unscanned",
            e,
        )
        return False
    if isinstance(verdict, Infected) and verdict.signature.startswith(_LIMIT_SIGNATURE):
        raise LimitsInconsistent(
            f"clamd at {client.address} does not scan a whole file of {limit} "
            f"({verdict.signature}): raise MaxFileSize and MaxScanSize in "
            f"clamd.conf to at least {max_upload >> 20}M, or lower {limit}."
        )
    return True


async def synapse_upload_limit(homeserver_url: str, token: str) -> int | None:
    """Synapse's ``m.upload.size`` from the media config; None if it names none."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as s:
        for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config"):
            async with s.get(homeserver_url + path, headers=headers) as response:
                if response.status == 404:
                    continue
                response.raise_for_status()
                data: dict[str, Any] = await response.json()
                size = data.get("m.upload.size")
                return int(size) if isinstance(size, int) else None
    return None


def check_synapse_limit(synapse_limit: int | None, max_upload: int) -> None:
    """Synapse must not accept larger files than the scanner reads."""
    if synapse_limit is not None and synapse_limit > max_upload:
        raise LimitsInconsistent(
            f"Synapse accepts uploads up to {synapse_limit >> 20} MB, but the scanner "
            f"reads at most {max_upload >> 20} MB (homeserver.max_upload_size_mb): "
            f"set max_upload_size in Synapse's homeserver.yaml to "
            f"{max_upload >> 20}M or lower, or raise homeserver.max_upload_size_mb "
            "together with clamd's StreamMaxLength and MaxFileSize."
        )
