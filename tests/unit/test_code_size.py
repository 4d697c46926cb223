"""Keep the code readable in pieces: no file over 500 lines, no function over 60.

Every ``*.py`` under ``bridge/`` and ``bots/`` counts, except the generated Alembic
migrations in ``bridge/db/migrations/versions/``. A function's length is measured
as ``ast`` sees it: from its ``def`` (decorators not included) to its last line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge", "bots")
EXEMPT = (Path("bridge/db/migrations/versions"),)

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def source_files() -> Iterator[Path]:
    """Every Python file the limits apply to, relative to the repository."""
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO)
            if not any(relative.is_relative_to(folder) for folder in EXEMPT):
                yield relative


def functions(tree: ast.AST) -> Iterator[tuple[str, FunctionNode]]:
    """Every function and method with its qualified name (``Class.method``)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, FunctionNode]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FunctionNode):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def size_violations() -> list[str]:
    found = []
    for relative in source_files():
        text = (REPO / relative).read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_FILE_LINES:
            found.append(f"{relative}: {lines} lines (max {MAX_FILE_LINES})")
        for name, node in functions(ast.parse(text, filename=str(relative))):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{relative}:{node.lineno}:{name}: {length} lines "
                    f"(max {MAX_FUNCTION_LINES})"
                )
    return found


def test_the_limits_see_the_code() -> None:
    files = list(source_files())
    assert Path("bridge/config.py") in files
    assert not any(f.is_relative_to(EXEMPT[0]) for f in files)


def test_no_file_over_500_and_no_function_over_60_lines() -> None:
    violations = size_violations()
    assert not violations, "Too long; split into named steps:\n" + "\n".join(violations)
