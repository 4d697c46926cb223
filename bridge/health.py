"""``/healthz``: each part of the product says whether it works, in one answer.

The core registers the database, the homeserver, the appservice inbox and the
pending deliveries; bots register their own parts (the scanner its clamd, the
offline bot its mail outbox). One part down makes the answer 503, so a load
balancer or a monitoring check sees it, and the body says which part and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("buergerchat.health")

#: A check answers ``{"ok": bool, ...details}``.
Check = Callable[[], Awaitable[dict[str, Any]]]
CHECK_TIMEOUT = 5.0


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def register(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def report(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(n) for n in names))
        parts = dict(zip(names, results, strict=True))
        return all(p["ok"] for p in parts.values()), parts

    async def _run(self, name: str) -> dict[str, Any]:
        try:
            result = await asyncio.wait_for(self._checks[name](), CHECK_TIMEOUT)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT:g} s"}
        except Exception as e:  # a broken check is a part that is down
            log.warning("health check %s failed", name, exc_info=True)
            return {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
        return {"ok": bool(result.get("ok")), **result}
