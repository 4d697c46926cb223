"""What every bot gets (the context) and what it must offer (start/stop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bridge.appservice import DurableAppService
    from bridge.case import CaseService
    from bridge.config import Config
    from bridge.db.store import Store
    from bridge.health import Health
    from bridge.jobs import JobQueue

    from .commands import CommandRouter
    from .team import TeamRooms


@dataclass
class BotContext:
    config: Config
    store: Store
    cases: CaseService
    appservice: DurableAppService
    commands: CommandRouter
    #: Team rooms (notice per new case) and the admin room (alerts).
    team: TeamRooms
    #: Where a bot registers the health of its own parts (``/healthz``).
    health: Health
    #: The durable job queue: a bot registers its job kinds before start.
    jobs: JobQueue


class Bot(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
