"""Reading admin-edited YAML with the file, line and key path of every value.

Admins edit YAML by hand; a mistake must be reported as ``file:line: key.path:
problem`` so it can be found at once. :class:`Section` reads a mapping node by node
and collects *all* problems instead of stopping at the first, so ``check-config``
can list every mistake in one run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yaml

T = TypeVar("T")
_MISSING: Any = object()


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """One or more problems in the configuration; ``str()`` lists all of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Problems:
    items: list[ConfigProblem] = field(default_factory=list)

    def add(self, file: str, line: int, path: str, message: str) -> None:
        self.items.append(ConfigProblem(file, line, path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def compose(path: Path, problems: Problems) -> yaml.Node | None:
    """Parse ``path`` into a YAML node tree, recording syntax errors with their line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(
            str(path), 0, "", "file not found; copy it from the example config"
        )
        return None
    except (OSError, UnicodeDecodeError) as e:
        problems.add(str(path), 0, "", f"cannot read the file: {e}")
        return None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else 0
        problems.add(str(path), line, "", f"not valid YAML: {e.problem}")
        return None


_constructor = yaml.SafeLoader(stream="")


def _plain(node: yaml.Node) -> Any:
    return _constructor.construct_object(node, deep=True)  # type: ignore[no-untyped-call]


class Section:
    """A YAML mapping being read: typed getters that record problems, never raise."""

    def __init__(
        self,
        file: str,
        node: yaml.Node | None,
        path: str,
        problems: Problems,
        line: int = 0,
    ) -> None:
        self.file = file
        self.path = path
        self.problems = problems
        self.line = node.start_mark.line + 1 if node is not None else line
        self._keys: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        self._read: set[str] = set()
        if node is None:
            return
        if not isinstance(node, yaml.MappingNode):
            self.error("must be a mapping of keys to values")
            return
        for key_node, value_node in node.value:
            key = str(_plain(key_node))
            if key in self._keys:
                self.problems.add(
                    file, key_node.start_mark.line + 1, self._sub(key), "duplicate key"
                )
            self._keys[key] = (key_node, value_node)

    @classmethod
    def load(cls, path: Path, problems: Problems) -> Section:
        node = compose(path, problems)
        if node is not None and isinstance(node, yaml.ScalarNode) and node.value == "":
            node = None
        return cls(str(path), node, "", problems)

    def _sub(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def line_of(self, key: str) -> int:
        pair = self._keys.get(key)
        return pair[0].start_mark.line + 1 if pair else self.line

    def error(self, message: str, key: str | None = None) -> None:
        path = self._sub(key) if key is not None else self.path
        line = self.line_of(key) if key is not None else self.line
        self.problems.add(self.file, line, path, message)

    def has(self, key: str) -> bool:
        return key in self._keys

    def keys(self) -> list[str]:
        return list(self._keys)

    def get(
        self,
        key: str,
        kind: type[T] | tuple[type, ...],
        default: Any = _MISSING,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value at ``key`` if it has type ``kind`` (and passes ``check``)."""
        self._read.add(key)
        if key not in self._keys:
            if default is _MISSING:
                self.error("required key is missing", key)
                return None
            return default
        value = _plain(self._keys[key][1])
        if value is None and default is not _MISSING:
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (
            isinstance(value, bool) and bool not in kinds
        ):
            names = " or ".join(_type_name(k) for k in kinds)
            self.error(f"must be {names}, not {value!r}", key)
            return None if default is _MISSING else default
        if check is not None:
            problem = check(value)
            if problem:
                self.error(problem, key)
                return None if default is _MISSING else default
        return value

    def section(self, key: str, required: bool = False) -> Section:
        self._read.add(key)
        if key not in self._keys:
            if required:
                self.error("required section is missing", key)
            return Section(self.file, None, self._sub(key), self.problems, self.line)
        return Section(self.file, self._keys[key][1], self._sub(key), self.problems)

    def items(self, key: str, required: bool = False) -> Iterator[Item]:
        """The entries of the list at ``key``, each with its own line and path."""
        self._read.add(key)
        if key not in self._keys:
            if required:
                self.error("required list is missing", key)
            return
        node = self._keys[key][1]
        if isinstance(node, yaml.ScalarNode) and _plain(node) is None:
            return
        if not isinstance(node, yaml.SequenceNode):
            self.error("must be a list (lines starting with '- ')", key)
            return
        for index, child in enumerate(node.value):
            yield Item(self, self._sub(key) + f"[{index}]", child)

    def finish(self) -> None:
        """Report keys nobody asked for: usually a typo."""
        for key in self._keys:
            if key not in self._read:
                hint = difflib.get_close_matches(key, list(self._read), n=1)
                tip = f"; did you mean '{hint[0]}'?" if hint else ""
                self.error(f"unknown key{tip}", key)


@dataclass
class Item:
    parent: Section
    path: str
    node: yaml.Node

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    @property
    def value(self) -> Any:
        return _plain(self.node)

    def is_mapping(self) -> bool:
        return isinstance(self.node, yaml.MappingNode)

    def section(self) -> Section:
        return Section(self.parent.file, self.node, self.path, self.parent.problems)

    def error(self, message: str) -> None:
        self.parent.problems.add(self.parent.file, self.line, self.path, message)


def _type_name(kind: type) -> str:
    return {
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }.get(kind, kind.__name__)


MATRIX_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:[0-9]+)?$")


def check_matrix_id(value: str) -> str | None:
    if not MATRIX_ID.match(value):
        return f"'{value}' is not a Matrix user ID like @anna.schmidt:example.org"
    return None


def check_port(value: int) -> str | None:
    return None if 0 < value < 65536 else "must be a TCP port between 1 and 65535"


def check_http_url(value: str) -> str | None:
    """A problem with an absolute http(s) URL, or None."""
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"'{value}' is not an http(s) URL like https://chat.example.org"
    return None
