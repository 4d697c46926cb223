"""Bots are found through entry points (``buergerchat.bots``, ``buergerchat.cli``)
and built in their ``order``: the same bots, handlers, hooks, jobs and commands,
in the same order, as when the core listed them itself."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, cast

import pytest

from bridge import plugins
from bridge.cli import build_parser
from bridge.commands import CommandRouter, Handler
from bridge.config import Config, ConfigError, load_config
from bridge.db.engine import create_engine, database_url
from bridge.db.store import Store
from bridge.health import Health
from bridge.lifecycle import Kind
from bridge.plugins import BotContext, bot_classes, load_bots

REPO = Path(__file__).resolve().parents[2]
#: The order the bots were built in when bots/registry.py listed them.
BOTS = [
    "workflow",
    "handover",
    "video",
    "booking",
    "scanner",
    "transcript",
    "offline",
    "routing",
    "guard",
]


def test_the_entry_points_name_every_bot_in_order() -> None:
    found = bot_classes()
    assert [name for name, _ in found] == BOTS
    assert [cls.name for _, cls in found] == BOTS
    orders = [cls.order for _, cls in found]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@dataclass
class FakeLifecycle:
    """Records what the bots subscribe to and which jobs they react with."""

    subscribed: list[tuple[Kind, Any]] = field(default_factory=list)
    reactions: list[tuple[Kind, str]] = field(default_factory=list)

    def subscribe(self, kind: Kind, handler: Any) -> None:
        self.subscribed.append((kind, handler))

    def react(self, kind: Kind, job_kind: str) -> None:
        self.reactions.append((kind, job_kind))


@dataclass
class FakeCases:
    lifecycle: FakeLifecycle = field(default_factory=FakeLifecycle)
    router: Any = None


@dataclass
class Recorder:
    """Stands in for the appservice (``on_event``) and the job queue (``kind``)."""

    handlers: list[Any] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def on_event(self, handler: Any) -> None:
        self.handlers.append(handler)

    def kind(self, name: str, handler: Any, **_: Any) -> None:
        self.kinds.append(name)

    def add_part(self, part: Any) -> None:
        """Stands in for the privacy service too."""
        self.parts.append(part.name)


class RecordingCommands(CommandRouter):
    def __init__(self, config: Config, cases: Any) -> None:
        self.order: list[str] = []
        super().__init__(config, cases)

    def register(self, name: str, handler: Handler, usage: str, help: str) -> None:
        self.order.append(name)
        super().register(name, handler, usage, help)


def fake_context(tmp_path: Path) -> tuple[BotContext, RecordingCommands, Recorder]:
    shutil.copytree(REPO / "config", tmp_path / "config")
    config = load_config(tmp_path / "config", tmp_path / "data")
    cases = FakeCases()
    commands = RecordingCommands(config, cases)
    recorder = Recorder()
    store = Store(create_engine(database_url("sqlite", tmp_path)))
    ctx = BotContext(
        config,
        store,
        cast(Any, cases),
        cast(Any, recorder),
        commands,
        cast(Any, object()),
        Health(),
        cast(Any, recorder),
        cast(Any, object()),
        cast(Any, object()),
        cast(Any, recorder),
    )
    return ctx, commands, recorder


async def test_load_bots_registers_in_todays_order(tmp_path: Path) -> None:
    ctx, commands, recorder = fake_context(tmp_path)
    try:
        bots = load_bots(ctx)
        assert [bot.name for bot in bots] == BOTS
        workflow, _, _, booking, scanner, transcript, offline, routing, _ = cast(
            list[Any], bots
        )
        assert commands.order == [
            "help",
            "claim",
            "transfer",
            "close",
            "goodbye",
            "transfer",  # the hand-over bot wraps it: <partner>:<department>
            "video",
            "audio",
            "next",
            "invite-guest",
            "calendar",
            "transcript",
            "revoke",
            "block",
            "unblock",
        ]
        assert commands.help_text().splitlines()[1:] == sorted(
            commands.help_text().splitlines()[1:]
        )
        assert recorder.kinds == [
            "handover.invite",
            "handover.closed",
            "handover.take",
            "handover.deadline",
            "handover.status",
            "handover.back",
            "booking.morning",
            "booking.reminder",
            "booking.no_show",
            "booking.expire",
            "booking.overdue",
            "booking.sweep",
            "scan.held",
            "transcript.archive",
            "offline.retry",
            "routing.tick",
        ]
        # No bot listens to the appservice itself: the case service publishes.
        assert recorder.handlers == []
        cases = cast(FakeCases, ctx.cases)
        assert cases.lifecycle.subscribed == [
            (Kind.STAFF_COMMAND, commands._on_command),
            (Kind.CLOSED, booking._closed),
            (Kind.CALL_ENDED, booking._call_ended),
            (Kind.STAFF_FILE, scanner.staff.on_file),
            (Kind.STAFF_MESSAGE, offline.on_staff_message),
            (Kind.CLOSED, routing.dispatcher.on_close),
            (Kind.CITIZEN_MESSAGE, routing.dispatcher.on_citizen_message),
        ]
        assert cases.lifecycle.reactions == [
            (Kind.CLOSED, "handover.closed"),
            (Kind.CLOSED, "transcript.archive"),
        ]
        assert cases.router is routing.dispatcher
    finally:
        await ctx.store.engine.dispose()


class Late:
    order = 20
    name = "late"

    def __init__(self, ctx: object) -> None:
        self.ctx = ctx


class Early(Late):
    order = 10
    name = "early"


class Orderless:
    name = "orderless"


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    found = [
        EntryPoint(name, value, plugins.BOTS_GROUP) for name, value in values.items()
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: found)


def test_bots_are_sorted_by_order_then_name(monkeypatch: pytest.MonkeyPatch) -> None:
    here = __name__
    fake_entry_points(
        monkeypatch,
        zz=f"{here}:Early",
        b=f"{here}:Late",
        a=f"{here}:Late",
    )
    assert [name for name, _ in bot_classes()] == ["zz", "a", "b"]
    ctx = cast(BotContext, object())
    assert all(bot.ctx is ctx for bot in cast(list[Any], load_bots(ctx)))


def test_a_bot_without_order_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, orderless=f"{__name__}:Orderless")
    with pytest.raises(plugins.PluginError, match="orderless"):
        bot_classes()


def test_no_entry_points_means_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch)
    with pytest.raises(plugins.PluginsNotInstalled):
        load_bots(cast(BotContext, object()))


def test_the_cli_lists_the_bots_subcommands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser, extra = build_parser()
    assert list(extra) == ["verify-transcript"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert "verify-transcript" in capsys.readouterr().out
    args = parser.parse_args(["verify-transcript", "BC-2026-000001"])
    assert args.command == "verify-transcript" and args.case == "BC-2026-000001"


class Greeter:
    """A town's own bot with its own section (``greeter:``) and a /status key."""

    order = 90
    name = "greeter"
    config_section = "greeter"

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    @staticmethod
    def read_config(section: Any, config: Config) -> dict[str, Any]:
        text = section.get(
            "text", str, "Moin", check=lambda v: None if v.strip() else "empty"
        )
        section.finish()
        return {"text": text, "town": config.town.name}

    @staticmethod
    def status_fields(settings: dict[str, Any], config: Config) -> dict[str, Any]:
        return {"greeting": settings["text"]}


def greeter_config(tmp_path: Path, section: str) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    with (folder / "buergerchat.yaml").open("a", encoding="utf-8") as f:
        f.write(section)
    return folder


def test_a_bot_brings_its_own_config_section(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = {name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in bot_classes()}
    fake_entry_points(monkeypatch, greeter=f"{__name__}:Greeter", **real)
    config = load_config(
        greeter_config(tmp_path, "\ngreeter:\n  text: Hallo\n"), tmp_path / "data"
    )
    assert config.plugin("greeter") == {"text": "Hallo", "town": config.town.name}
    # The core's own bots read theirs the same way.
    assert config.plugin("scanner").max_size == 20 << 20
    assert plugins.plugin_hooks(config, "status_fields")[-1] == {"greeting": "Hallo"}
    with pytest.raises(LookupError, match="nobody"):
        config.plugin("nobody")


def test_a_bots_section_problems_are_named_with_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = {name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in bot_classes()}
    fake_entry_points(monkeypatch, greeter=f"{__name__}:Greeter", **real)
    folder = greeter_config(tmp_path, "\ngreeter:\n  text: ' '\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_config(folder, tmp_path / "data")
    messages = str(caught.value)
    assert "greeter.text: empty" in messages
    assert "greeter.colour" in messages


def test_a_section_no_bot_reads_is_refused(tmp_path: Path) -> None:
    """Without the greeter installed, its section is an unknown key, not ignored."""
    folder = greeter_config(tmp_path, "\ngreeter:\n  text: Hallo\n")
    with pytest.raises(ConfigError, match="greeter"):
        load_config(folder, tmp_path / "data")
