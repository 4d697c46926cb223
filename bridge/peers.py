"""What the bridge processes of one town tell each other (over
:class:`bridge.cluster.Cluster`), so that a citizen may reach any of them:

=========  =====================  ==========================================
topic      sent when              the others
=========  =====================  ==========================================
``case``   an event was written   wake the case's long-polls (with its cursor)
           or marked delivered
``token``  tokens were revoked    stop trusting their cached token checks
``erased`` a case was erased      forget its cursor, tokens, signals and
                                  its room and ghost in mx-state
``edu``    Synapse pushed typing  show it too (each keeps its own signals)
           or a read receipt
``inbox``  a transaction was      the lease holder works it off now
           stored
=========  =====================  ==========================================

After the listener (re)connects, notices may have been lost: every long-poll
reads the database again and cached token checks are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from .appservice import DurableAppService
from .case import CaseService
from .cluster import PAYLOAD_MAX, Cluster

log = logging.getLogger("buergerchat.peers")

#: Of Synapse's ephemeral events, what the citizen's side shows.
SHARED_EDUS = ("m.typing", "m.receipt")


def join(cluster: Cluster, cases: CaseService, az: DurableAppService) -> None:
    notifier, tokens = cases.notifier, cases.tokens

    def case_written(case_id: str, seq: int | None) -> None:
        cluster.publish("case", case_id, *(() if seq is None else (str(seq),)))

    def on_case(args: list[str]) -> None:
        seq = int(args[1]) if len(args) > 1 and args[1].isdigit() else None
        notifier.notify(args[0], seq, here_only=True)

    erasing: set[asyncio.Task[None]] = set()

    def on_erased(args: list[str]) -> None:
        case_id, room_id, ghost = args
        cases.forget(case_id)
        # mautrix's state file of this process names the ghost and the room.
        task = asyncio.create_task(
            az.forget(None if room_id == "-" else room_id, ghost)
        )
        erasing.add(task)
        task.add_done_callback(erasing.discard)

    def edu_pushed(edu: dict[str, Any]) -> None:
        if edu.get("type") not in SHARED_EDUS:
            return
        line = json.dumps(edu, separators=(",", ":"), ensure_ascii=True)
        if len(line) < PAYLOAD_MAX - 200:
            cluster.publish("edu", line.replace(" ", "\\u0020"))

    def on_edu(args: list[str]) -> None:
        edu = json.loads(" ".join(args))
        if isinstance(edu, dict) and edu.get("type") in SHARED_EDUS:
            az.hand_on_ephemeral(edu)

    def resync() -> None:
        notifier.resync()
        tokens.forget_all()
        az.wake()

    if cluster.shared:
        # Only then may another process write a case's events (the timeline
        # then hands no new event on from memory: bridge.timeline).
        notifier.peers = case_written
    tokens.peers = lambda case_id: cluster.publish("token", case_id)
    az.peers_stored = lambda: cluster.publish("inbox")
    az.peers_ephemeral = edu_pushed
    cluster.on("case", on_case)
    cluster.on("token", lambda args: tokens.forget(args[0]))
    cluster.on("erased", on_erased)
    cluster.on("edu", on_edu)
    cluster.on("inbox", lambda _args: az.wake())
    cluster.on_resync(resync)
