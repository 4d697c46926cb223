"""Reloading ``departments.yaml`` while the bridge runs.

The file is read every few seconds and compared by content (an editor may keep the
modification time). A good edit replaces the rules everyone holds
(:meth:`bridge.config.Config.replace_rules`); a broken one keeps the last good rules,
is logged with every problem and reported in the admin room, once per broken
version of the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.departments.model import RoutingRules
from bridge.departments.rules import load_rules
from bridge.yamlconf import ConfigError

if TYPE_CHECKING:
    from bridge.config import Config

log = logging.getLogger("buergerchat.routing.reload")

RULES_FILE = "departments.yaml"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RulesWatcher:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.path: Path = config.config_dir / RULES_FILE
        self._seen: str | None = None

    async def baseline(self) -> None:
        """At start: the file as loaded is the known good version."""
        try:
            self._seen = _digest(await asyncio.to_thread(self.path.read_bytes))
        except OSError:
            self._seen = None

    async def check(self) -> tuple[RoutingRules | None, list[str]]:
        """(new rules, []) after a good edit, (None, problems) after a broken one,
        (None, []) when nothing changed. Good rules are already in place."""
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as e:
            digest = f"missing:{e.errno}"
            if digest == self._seen:
                return None, []
            self._seen = digest
            problem = f"{self.path}: cannot be read ({e.strerror}); the last good "
            problem += "rules stay in use"
            log.error("%s", problem)
            return None, [problem]
        digest = _digest(data)
        if digest == self._seen:
            return None, []
        self._seen = digest
        try:
            rules = await asyncio.to_thread(load_rules, self.path)
        except ConfigError as e:
            problems = [str(p) for p in e.problems]
            log.error(
                "%s was changed but has %d problem(s); the last good rules stay in "
                "use:\n%s",
                self.path,
                len(problems),
                "\n".join(problems),
            )
            return None, problems
        self.config.replace_rules(rules)
        log.info(
            "reloaded %s: %d department(s): %s",
            self.path,
            len(rules.departments),
            ", ".join(d.id for d in rules.departments),
        )
        return rules, []
