"""``buergerchat`` command line: run, check-config, registration, element-config,
and the data protection commands (erase, export, retention, privacy-log)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from .config import Config, ConfigError, load_config
from .datadir import make_private, private_umask
from .element import write_element_config
from .errors import BuergerchatError
from .federation import unreachable_partners
from .homeserver import EmbeddedSynapse, Secrets, load_secrets, register_user, render
from .plugins import CliCommand, cli_commands
from .privacy import cli as privacy_cli

log = logging.getLogger("buergerchat")


def _load(args: argparse.Namespace) -> Config | None:
    """The configuration, or None after printing each problem as file:line: key."""
    try:
        return load_config(
            Path(args.config_dir).resolve() if args.config_dir else None,
            Path(args.data_dir).resolve() if args.data_dir else None,
        )
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(
            f"{len(e.problems)} problem(s) found. Fix the configuration and start "
            "again (see: buergerchat check-config).",
            file=sys.stderr,
        )
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    print(
        f"Configuration in {config.config_dir} is valid: "
        f"{len(config.departments)} department(s)."
    )
    for warning in config_warnings(config):
        print(f"warning: {warning}")
    if config.federation.open:
        for line in asyncio.run(unreachable_partners(config.federation)):
            print(f"warning: {line}")
    return 0


def config_warnings(config: Config) -> list[str]:
    """Valid, but not what a town's website should run with."""
    host = urlparse(config.bridge.public_url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost"):
        return []  # the embedded demo on this machine
    warnings = []
    if "*" in config.bridge.allowed_origins:
        warnings.append(
            "bridge.allowed_origins is '*': any website may embed the chat. Name "
            "the town's website, e.g. ['https://www.musterstadt.example']."
        )
    if not config.limits.trusted_proxies:
        warnings.append(
            "limits.trusted_proxies is empty: behind a reverse proxy every citizen "
            "has the proxy's address, so the per-address limits would count the "
            "whole town as one. Name the proxy's address."
        )
    return warnings


async def _demo_staff(
    config: Config, secrets_: Secrets, homeserver_url: str
) -> list[str]:
    """Accounts with generated passwords for the configured local staff."""
    path = config.data_dir / "demo-staff.yaml"
    passwords: dict[str, str] = {}
    if path.exists():
        passwords = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    lines = []
    suffix = f":{config.homeserver.server_name}"
    for mxid, staff in config.all_staff().items():
        if not mxid.endswith(suffix):
            continue
        password = passwords.get(mxid) or secrets.token_urlsafe(12)
        await register_user(
            homeserver_url,
            secrets_["registration_shared_secret"],
            mxid[1:].removesuffix(suffix),
            password,
            displayname=staff.name,
        )
        passwords[mxid] = password
        lines.append(f"    {mxid}  password: {password}")
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(passwords), encoding="utf-8")
    return lines


async def _run(config: Config) -> None:
    from .app import Bridge

    make_private(config.data_dir)
    secrets_ = load_secrets(config.data_dir)
    synapse: EmbeddedSynapse | None = None
    bridge = Bridge(config, secrets_)
    stop = _stop_on_signals()
    try:
        if config.homeserver.embedded:
            synapse = EmbeddedSynapse(config, secrets_)
            await synapse.start()
        await bridge.start()
        if synapse is not None:
            # While Synapse is down the inbox waits; once it is back, events it
            # had queued in memory and lost are found in the rooms first.
            synapse.keep_running(
                alert=bridge.alert_admins, on_death=bridge.request_catch_up
            )
        logins = []
        if config.demo_staff_accounts and config.homeserver.embedded:
            logins = await _demo_staff(config, secrets_, config.homeserver.url)
        public = config.bridge.public_url
        print(
            "\nBürgerchat is running.\n"
            f"  Demo page (citizen):  {public}/demo\n"
            f"  Citizen API:          {public}/api/v1/"
            f"  (OpenAPI: {public}/api/v1/openapi.json)\n"
            f"  Homeserver (staff):   {config.homeserver.url}\n"
            + (
                "  Demo staff logins (any Matrix client, e.g. Element):\n"
                + "\n".join(logins)
                + "\n"
                if logins
                else ""
            )
            + "  Element Desktop:      buergerchat element-config --out "
            "~/.config/Element/config.json  (then sign in with a login above)\n"
            + f"  Data folder:          {config.data_dir}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        await stop.wait()
        print("Stopping…", flush=True)
    finally:
        await bridge.stop()
        if synapse is not None:
            await synapse.stop()


def cmd_run(args: argparse.Namespace) -> int:
    return _until_stopped(args, _run)


def _until_stopped(
    args: argparse.Namespace, main: Callable[[Config], Coroutine[Any, Any, None]]
) -> int:
    """Run ``main`` with the loaded config; a Bürgerchat error is one line."""
    config = _load(args)
    if config is None:
        return 1
    try:
        asyncio.run(main(config))
    except BuergerchatError as e:
        print(f"buergerchat: {e.message}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals() -> asyncio.Event:
    """Set by Ctrl-C or SIGTERM: the command stops everything in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _synapse_only(config: Config) -> None:
    """Synapse (with its workers and nginx, when configured) without the
    bridge: the Synapse container of docker-compose with workers."""
    make_private(config.data_dir)
    synapse = EmbeddedSynapse(config, load_secrets(config.data_dir))
    stop = _stop_on_signals()
    try:
        await synapse.start()
        synapse.keep_running()
        print(f"Synapse is running on {config.homeserver.url}.", flush=True)
        await stop.wait()
    finally:
        await synapse.stop()


def cmd_synapse(args: argparse.Namespace) -> int:
    return _until_stopped(args, _synapse_only)


def cmd_element_config(args: argparse.Namespace) -> int:
    """Element's config.json for staff: the theme, this homeserver."""
    config = _load(args)
    if config is None:
        return 1
    print(write_element_config(config, args.out), end="")
    return 0


def cmd_registration(args: argparse.Namespace) -> int:
    """Render the Synapse files (for a Synapse run elsewhere) and print their path."""
    config = _load(args)
    if config is None:
        return 1
    path = render(config, load_secrets(config.data_dir))
    print(path.parent / "appservice-registration.yaml")
    return 0


def _client_errors_in_one_line(record: logging.LogRecord) -> bool:
    """aiohttp answers a request it cannot even parse (a NUL in a header, a
    broken request line) with 400 itself and logs a traceback: the client's
    fault, so one line without traceback is enough."""
    from aiohttp.http_exceptions import HttpProcessingError

    if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
        record.msg = f"refused a malformed HTTP request: {record.exc_info[1]}"
        record.args = ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, CliCommand]]:
    """The command line, with the subcommands the installed bots bring
    (``buergerchat.cli`` entry points), and those extra commands by name."""
    parser = argparse.ArgumentParser(prog="buergerchat", description=__doc__)
    parser.add_argument(
        "--config-dir", help="default: $BUERGERCHAT_CONFIG_DIR or ./config"
    )
    parser.add_argument("--data-dir", help="default: $BUERGERCHAT_DATA_DIR or ./data")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start Synapse (if embedded), the bridge and the bots")
    sub.add_parser(
        "synapse",
        help="start only Synapse, with its workers and nginx if configured",
    )
    sub.add_parser("check-config", help="check the YAML files and name every mistake")
    sub.add_parser("registration", help="write Synapse's config and appservice file")
    element = sub.add_parser(
        "element-config",
        help="print Element's config.json for staff (theme + this homeserver)",
    )
    element.add_argument(
        "--out", type=Path, help="write it here too (e.g. Element Desktop's folder)"
    )
    privacy_cli.configure(sub)
    extra = {command.name: command for command in cli_commands()}
    for command in extra.values():
        command.configure(sub.add_parser(command.name, help=command.help))
    return parser, extra


def main(argv: list[str] | None = None) -> int:
    parser, extra = build_parser()
    args = parser.parse_args(argv)
    # Before anything is written: the data folder holds tokens and personal data.
    private_umask()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mau", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_client_errors_in_one_line)
    if args.command in extra:
        config = _load(args)
        return 1 if config is None else extra[args.command].run(config, args)
    privacy = privacy_cli.commands()
    if args.command in privacy:
        config = _load(args)
        return 1 if config is None else privacy[args.command](config, args)
    handler = {
        "run": cmd_run,
        "synapse": cmd_synapse,
        "check-config": cmd_check_config,
        "registration": cmd_registration,
        "element-config": cmd_element_config,
    }[args.command]
    return handler(args)
