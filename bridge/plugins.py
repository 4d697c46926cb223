"""The frame for bots: what every bot gets (the context), what it must offer
(start/stop, its ``order``), how the core finds them, and the few things the core
calls on a bot through a Protocol (the router).

The core (``bridge/``) never imports a bot. Bots name themselves in the
``buergerchat.bots`` entry-point group of ``pyproject.toml`` (``name =
"package.module:BotClass"``); :func:`load_bots` builds them in their ``order``.
Extra ``buergerchat`` subcommands come from the ``buergerchat.cli`` group (a
function returning a :class:`CliCommand`). A town's own bot is a package with such
an entry point: no core file changes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from .appservice import DurableAppService
    from .case import CaseService
    from .commands import CommandRouter
    from .config import Config, Department
    from .db.models import Case
    from .db.store import Store
    from .departments.availability import Availability
    from .health import Health
    from .jobs import JobQueue
    from .limits import Limits
    from .mail.outbox import Outbox
    from .privacy.service import Privacy
    from .team import TeamRooms
    from .yamlconf import Section

BOTS_GROUP = "buergerchat.bots"
CLI_GROUP = "buergerchat.cli"


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
    #: The mail outbox (durable, each mail a job): ``await ctx.mail.enqueue(…)``.
    mail: Outbox
    #: Abuse limits: ``await ctx.limits.hit("uploads_per_case", case_id)``.
    limits: Limits
    #: Data protection: a bot adds the part it owns (its files, its rows'
    #: personal data) with ``ctx.privacy.add_part(Part(…))``.
    privacy: Privacy
    #: ``ctx.outcome("scan", "clean")``: one outcome for /metrics
    #: (bridge.metrics.OUTCOMES); nothing is counted where no metrics run.
    outcome: Callable[[str, str], None] = lambda part, outcome: None


class Bot(Protocol):
    """What the core calls on every bot.

    A bot class may also carry its own part of ``buergerchat.yaml`` (the way a
    maubot plugin carries its base config): ``config_section`` names the key and
    ``read_config(section, config)`` (a classmethod) reads it with its defaults
    and checks, recording problems on the section. The result is
    ``config.plugin(config_section)``. Two more optional classmethods take those
    settings: ``synapse_modules(settings, config)`` returns entries for the
    ``modules:`` list of the rendered homeserver.yaml, and
    ``status_fields(settings, config)`` adds keys to ``GET /status``, and
    ``csp_sources(settings, config)`` sources to the CSP of /demo (the video
    bot: its Jitsi server).
    """

    #: Bots are built (and register handlers, hooks and commands) in ascending
    #: order, then by entry-point name; stopped in reverse.
    order: ClassVar[int]
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class CliCommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    #: Called with the loaded config and the parsed arguments; returns the exit code.
    run: Callable[[Config, argparse.Namespace], int]


class PluginsNotInstalled(RuntimeError):
    """No bot entry points: the package is not installed (``pip install -e .``
    after changing pyproject.toml, or ``scripts/setup``)."""


class PluginError(RuntimeError):
    """A bot's entry point names something that is no bot class."""


def bot_classes() -> list[tuple[str, Any]]:
    """``(entry-point name, class)`` of every bot, in the order they are built."""
    found = entry_points(group=BOTS_GROUP)
    if not found:
        raise PluginsNotInstalled(
            f"no entry points in group {BOTS_GROUP!r}: install Bürgerchat "
            "(scripts/setup or pip install -e .) so that its bots are found"
        )
    loaded = [(entry.name, entry.load()) for entry in found]
    for name, cls in loaded:
        if not isinstance(getattr(cls, "order", None), int):
            raise PluginError(
                f"bot {name!r} ({cls!r}) in {BOTS_GROUP!r} has no integer 'order'"
            )
    return sorted(loaded, key=lambda pair: (pair[1].order, pair[0]))


def read_plugin_sections(main: Section, config: Config) -> dict[str, Any]:
    """Each bot's own section of ``buergerchat.yaml``, read by the bot's class;
    an absent section gives the bot's defaults."""
    settings: dict[str, Any] = {}
    for _, cls in bot_classes():
        key = getattr(cls, "config_section", None)
        if key:
            settings[key] = cls.read_config(main.section(key), config)
    return settings


def plugin_hooks(config: Config, hook: str) -> list[Any]:
    """What each bot's class answers to ``hook(settings, config)`` /
    ``hook(settings)`` (see :class:`Bot`), for bots that offer it."""
    answers = []
    for _, cls in bot_classes():
        key = getattr(cls, "config_section", None)
        method = getattr(cls, hook, None)
        if key and method is not None:
            answers.append(method(config.plugin(key), config))
    return answers


def load_bots(ctx: BotContext) -> list[Bot]:
    """Build every installed bot with ``ctx``; each registers its commands,
    event handlers, close hooks, job kinds and routes on the context."""
    return [cls(ctx) for _, cls in bot_classes()]


def cli_commands() -> list[CliCommand]:
    """Extra ``buergerchat`` subcommands that bots bring (e.g. verify-transcript),
    by entry-point name."""
    found = sorted(entry_points(group=CLI_GROUP), key=lambda entry: entry.name)
    return [entry.load()() for entry in found]


# --- what the core calls on the routing bot ---------------------------------


class OpeningStatus(Protocol):
    @property
    def next_opening(self) -> datetime | None: ...


class Decision(Protocol):
    """Why a new case went live, queued or offline (``reason``: ``free_staff``,
    ``all_busy``, ``closed``, ``nobody_online``)."""

    @property
    def reason(self) -> str: ...

    @property
    def status(self) -> OpeningStatus: ...


class Router(Protocol):
    """Decides live/queued/offline and whom to invite (``CaseService.router``,
    set by the routing bot)."""

    async def open_case(
        self,
        *,
        department: Department,
        topic: str | None,
        citizen_name: str | None,
        language: str,
        client_key: str | None = None,
    ) -> tuple[Decision, Case | None, str | None]: ...

    async def drain(self) -> None: ...

    async def availability(self) -> dict[str, Availability]:
        """Per department id: what a chat started now would meet."""
        ...

    async def transfer(
        self,
        case: Case,
        target: Department,
        *,
        actor: str | None = None,
        note: str | None = None,
    ) -> tuple[str, ...]: ...
