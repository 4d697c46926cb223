"""The citizen-facing catalogue: every line in German and English with the same
placeholders, and no citizen-facing system line written outside it."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from bridge.messages import CATALOGUE, LANGUAGES, say

REPO = Path(__file__).resolve().parents[2]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_each_line_has_both_languages_with_the_same_placeholders(key: str) -> None:
    texts = CATALOGUE[key]
    assert set(texts) == set(LANGUAGES)
    assert _fields(texts["de"]) == _fields(texts["en"])
    assert all(t.strip() == t and t for t in texts.values())


def test_other_languages_read_german() -> None:
    assert say("routed", "tr", department="X") == say("routed", "de", department="X")
    assert say("routed", "en", department="X").startswith("It is your turn")


def test_system_lines_come_from_the_catalogue() -> None:
    """``add_system_event`` gets its text from ``say(...)`` (or a variable built
    from it) everywhere under bridge/ and bots/: a German literal there is the
    bug the catalogue fixed (English citizens read German lines)."""
    offenders = []
    for path in sorted([*REPO.glob("bridge/**/*.py"), *REPO.glob("bots/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_system_event"
                and len(node.args) >= 2
            ):
                continue
            text = node.args[1]
            if isinstance(text, ast.Constant | ast.JoinedStr):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []
