"""The Matrix application service, with transactions that survive a crash.

mautrix acknowledges a transaction before its handlers ran and remembers seen
transaction ids only in memory: a crash loses events, a restart replays them. Here
a transaction is written to the database first, acknowledged second, and worked
off from the database in order by one owned task, so nothing is lost or repeated.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from json import JSONDecodeError
from pathlib import Path

from aiohttp import web
from mautrix.appservice import AppService
from mautrix.appservice.state_store.file import FileASStateStore
from mautrix.types import JSON, Event, SerializerError

from .db.store import Store
from .tasks import cancel

log = logging.getLogger("buergerchat.appservice")
EventHandler = Callable[[Event], Awaitable[None]]


class DurableAppService(AppService):
    def __init__(
        self,
        *,
        store: Store,
        state_file: Path,
        middlewares: list,
        client_max_size: int,
        **kwargs: object,
    ) -> None:
        self.store = store
        self._handlers: list[EventHandler] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        super().__init__(
            state_store=FileASStateStore(str(state_file), binary=False),
            aiohttp_params={
                "middlewares": middlewares,
                "client_max_size": client_max_size,
            },
            log=log,
            **kwargs,  # type: ignore[arg-type]
        )

    def on_event(self, handler: EventHandler) -> None:
        """Register a handler for every room event, in transaction order."""
        self._handlers.append(handler)

    async def _http_handle_transaction(self, request: web.Request) -> web.Response:
        """Replaces mautrix's handler (its routes call this method by name)."""
        if not self._check_token(request):
            return web.json_response(
                {"errcode": "M_FORBIDDEN", "error": "Invalid hs_token"}, status=403
            )
        txn_id = request.match_info["transaction_id"]
        try:
            body = await request.json()
        except JSONDecodeError:
            return web.json_response(
                {"errcode": "M_NOT_JSON", "error": "Body is not JSON"}, status=400
            )
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return web.json_response(
                {"errcode": "M_BAD_JSON", "error": "Missing events list"}, status=400
            )
        # Stored before acknowledged: if this raises, Synapse gets a 500 and retries.
        if not await self.store.save_transaction(txn_id, body):
            log.debug("transaction %s was stored before; acknowledging again", txn_id)
        self._wake.set()
        return web.json_response({})

    def start_worker(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="appservice-inbox")

    async def stop_worker(self) -> None:
        await cancel(self._worker)
        self._worker = None

    async def drain(self) -> None:
        """Work off everything stored so far (also used at start-up)."""
        while True:
            batch = await self.store.unprocessed_transactions()
            if not batch:
                return
            for txn in batch:
                for raw in txn.body.get("events", []):
                    await self._dispatch(raw)
                await self.store.mark_processed(txn.seq)

    async def _work(self) -> None:
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("working off stored transactions failed; retrying")
                await asyncio.sleep(2)
                continue
            await self._wake.wait()
            self._wake.clear()

    async def _dispatch(self, raw: JSON) -> None:
        try:
            self._fix_prev_content(raw)
            event = Event.deserialize(raw)
        except SerializerError:
            log.warning(
                "skipping an event that does not parse: %s", json.dumps(raw)[:300]
            )
            return
        try:
            await self.state_store.update_state(event)
        except Exception:
            log.exception("updating the state cache failed for %s", raw.get("event_id"))
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:
                # One broken handler must not block the inbox; the event stays in
                # the database, and the traceback tells the operator why.
                log.exception(
                    "handler %s failed for event %s",
                    getattr(handler, "__qualname__", handler),
                    raw.get("event_id"),
                )
