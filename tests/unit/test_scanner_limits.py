"""Start-up checks that Synapse's max_upload_size ≤ clamd's StreamMaxLength ≤
MaxFileSize, against real clamd processes configured wrongly on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.scanner.clamd_client import ClamdClient
from bots.scanner.clamd_runner import ClamdLimits, ClamdProcess
from bots.scanner.limits import (
    LimitsInconsistent,
    check_clamd_accepts,
    check_synapse_limit,
)

MB = 1 << 20


async def test_clamd_with_matching_limits_passes(tmp_path: Path) -> None:
    """clamd configured from the upload limit takes a full-size stream."""
    async with ClamdProcess(tmp_path, max_upload_size=2 * MB) as clamd:
        assert await check_clamd_accepts(clamd.client(), 2 * MB) is True


async def test_small_stream_limit_refuses_start(tmp_path: Path) -> None:
    """StreamMaxLength below the upload limit: start refused, naming the key."""
    async with ClamdProcess(tmp_path, max_upload_size=1 * MB) as clamd:
        with pytest.raises(LimitsInconsistent) as caught:
            await check_clamd_accepts(clamd.client(transport="unix"), 2 * MB)
    assert "StreamMaxLength" in caught.value.message
    assert "2M" in caught.value.message


async def test_small_max_file_size_refuses_start(tmp_path: Path) -> None:
    """MaxFileSize below StreamMaxLength: clamd would not scan the file's end;
    with AlertExceedsMax it says so, and the start is refused."""
    clamd = ClamdProcess(tmp_path, max_upload_size=2 * MB)
    clamd.limits = ClamdLimits(
        stream_max_length=2 * MB, max_file_size=1 * MB, max_scan_size=8 * MB
    )
    async with clamd:
        with pytest.raises(LimitsInconsistent) as caught:
            await check_clamd_accepts(clamd.client(), 2 * MB)
    assert "MaxFileSize" in caught.value.message
    assert "Heuristics.Limits.Exceeded" in caught.value.message


async def test_unreachable_clamd_is_not_a_refusal(tmp_path: Path) -> None:
    """clamd down at start: the check is skipped (files wait for clamd anyway)."""
    client = ClamdClient(unix_socket=tmp_path / "none.sock", connect_timeout=0.5)
    assert await check_clamd_accepts(client, MB) is False


@pytest.mark.parametrize("synapse_limit", [None, MB, 20 * MB])
def test_synapse_limit_up_to_the_upload_limit_is_fine(
    synapse_limit: int | None,
) -> None:
    """Synapse may accept as much as the scanner reads, or less."""
    check_synapse_limit(synapse_limit, 20 * MB)


def test_synapse_accepting_more_than_the_scanner_refuses_start() -> None:
    """Synapse's max_upload_size above ours: the message says what to set."""
    with pytest.raises(LimitsInconsistent) as caught:
        check_synapse_limit(50 * MB, 20 * MB)
    assert "max_upload_size" in caught.value.message
    assert "20M" in caught.value.message
