"""Which bots run in the bridge process. Each bot registers its commands, event
handlers, close hooks and routes on the context when it is built."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Bot, BotContext
from .offline import OfflineBot
from .routing.bot import RoutingBot
from .scanner.bot import ScannerBot
from .transcript import cli as transcript_cli
from .transcript.bot import TranscriptBot
from .video.bot import VideoBot
from .workflow import WorkflowBot

if TYPE_CHECKING:
    from bridge.config import Config


@dataclass(frozen=True)
class CliCommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    #: Called with the loaded config and the parsed arguments; returns the exit code.
    run: Callable[[Config, argparse.Namespace], int]


def build_bots(ctx: BotContext) -> list[Bot]:
    return [
        WorkflowBot(ctx),
        VideoBot(ctx),
        ScannerBot(ctx),
        TranscriptBot(ctx),
        OfflineBot(ctx),
        RoutingBot(ctx),
    ]


def cli_commands() -> list[CliCommand]:
    """Extra ``buergerchat`` subcommands that bots bring (e.g. transcript verify)."""
    return [
        CliCommand(
            "verify-transcript",
            "recompute a case's transcript hash from Synapse and compare",
            transcript_cli.configure,
            transcript_cli.run,
        ),
    ]
