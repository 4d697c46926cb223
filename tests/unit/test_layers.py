"""The core never imports a bot (issue "The case at the centre"): bots are plugins,
found through the ``buergerchat.bots`` entry points, so a new bot touches no core
file.

Every module under ``bridge/`` is parsed with ``ast``; any import of ``bots`` —
absolute, relative, inside a function or under ``TYPE_CHECKING``, or a literal
``importlib.import_module("bots…")`` — fails the test with file:line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = "bridge"
PLUGINS = "bots"

#: No exceptions: the departments model and the mail outbox are core services
#: (bridge/departments, bridge/mail); each bot reads its own config section.
KNOWN_EXCEPTIONS: set[Path] = set()


def core_files() -> Iterator[Path]:
    for path in sorted((REPO / CORE).rglob("*.py")):
        yield path.relative_to(REPO)


def module_package(relative: Path) -> list[str]:
    """The package a module's relative imports start from (``bridge.api`` for
    ``bridge/api/citizen.py`` and for ``bridge/api/__init__.py``)."""
    parts = list(relative.with_suffix("").parts)
    return parts[:-1]


def from_import(node: ast.ImportFrom, package: list[str]) -> list[str]:
    """``from X import a, b`` names X, X.a and X.b (a relative X made absolute;
    beyond the top it resolves to a top-level package)."""
    base = package[: max(len(package) - node.level + 1, 0)] if node.level else []
    module = ".".join([*base, *(node.module.split(".") if node.module else [])])
    if not module:
        return [alias.name for alias in node.names]
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def imported_modules(node: ast.AST, package: list[str]) -> list[str]:
    """The absolute module names an import node (or a literal dynamic import)
    names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return from_import(node, package)
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
            return [str(first.value)]
    return []


def is_plugin(module: str) -> bool:
    return module == PLUGINS or module.startswith(PLUGINS + ".")


def bot_imports(relative: Path) -> list[str]:
    """``file:line: module`` for every import of a bot in one core module."""
    tree = ast.parse((REPO / relative).read_text(encoding="utf-8"), str(relative))
    package = module_package(relative)
    found = []
    for node in ast.walk(tree):
        for module in imported_modules(node, package):
            if is_plugin(module):
                found.append(f"{relative}:{node.lineno}: imports {module}")
                break
    return found


def test_the_check_sees_the_core() -> None:
    files = list(core_files())
    assert Path("bridge/app.py") in files
    assert Path("bridge/db/metadata.py") in files
    assert KNOWN_EXCEPTIONS <= set(files)


def test_the_check_finds_every_kind_of_import() -> None:
    source = """
from typing import TYPE_CHECKING
import bots.routing
from bots import registry
from .. import bots
if TYPE_CHECKING:
    from bots.routing.dispatcher import Dispatcher
def later():
    importlib.import_module("bots.video")
from .plugins import Bot
import botsch
"""
    package = ["bridge"]
    hits = [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if any(is_plugin(m) for m in imported_modules(node, package))
    ]
    assert sorted(hits) == [3, 4, 5, 7, 9]


def test_the_core_imports_no_bot() -> None:
    violations = [
        line
        for relative in core_files()
        if relative not in KNOWN_EXCEPTIONS
        for line in bot_imports(relative)
    ]
    assert not violations, (
        "The core (bridge/) must not import bots; let the bot register itself "
        "through the buergerchat.bots entry point, or move what both need into "
        "the core (a Protocol in bridge/plugins.py):\n" + "\n".join(violations)
    )


def test_known_exceptions_are_still_needed() -> None:
    """Once config.py or citizen.py no longer imports a bot, its exception goes."""
    clean = [str(path) for path in KNOWN_EXCEPTIONS if not bot_imports(path)]
    assert not clean, f"remove from KNOWN_EXCEPTIONS: {', '.join(sorted(clean))}"
