"""schemathesis against the served OpenAPI document: generated requests to every
documented route never get a 5xx and never a status the document does not list."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .stack import Stack
from .test_live_chat import open_case

pytestmark = pytest.mark.e2e


async def test_no_server_error_and_no_undocumented_status(stack: Stack) -> None:
    """Every operation, with a real chat token in the header; the checks are
    not_a_server_error and status_code_conformance; the log has no traceback."""
    case = await open_case(stack)
    st = Path(sys.executable).with_name("st")
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(st),
            "run",
            f"{stack.bridge_url}/api/v1/openapi.json",
            "--url",
            stack.bridge_url,
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "40",
            "-H",
            f"Authorization: Bearer {case['token']}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Traceback" not in stack.log(), stack.log()[-4000:]
