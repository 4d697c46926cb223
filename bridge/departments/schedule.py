"""Reading hours, times, weekdays and dates as admins write them in YAML.

Admins write ``mo: ["08:00-12:00", "14:00-16:00"]``, ``mo-fr: 9:00-12:00``,
``donnerstag: ...`` or ``thu: ...``, dates as ``2026-12-24`` or ``24.12.2026``.
Every mistake is recorded with file, line and key path; nothing here raises.

Times are read from the raw YAML text: PyYAML would turn an unquoted ``12:00`` into
the sexagesimal number 720.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import yaml

from bridge.yamlconf import Problems

from .model import DAY_MINUTES, Period

__all__ = [
    "WEEKDAY_NAMES",
    "PeriodList",
    "Where",
    "check_overlaps",
    "child",
    "parse_date",
    "parse_period",
    "parse_time",
    "read_periods",
    "raw_text",
    "read_week",
    "weekdays_of",
]

# German name first: it is what messages show.
WEEKDAY_NAMES: tuple[tuple[str, ...], ...] = (
    ("montag", "mo", "mon", "monday"),
    ("dienstag", "di", "tu", "tue", "tues", "tuesday"),
    ("mittwoch", "mi", "we", "wed", "wednesday"),
    ("donnerstag", "do", "th", "thu", "thur", "thurs", "thursday"),
    ("freitag", "fr", "fri", "friday"),
    ("samstag", "sa", "sat", "saturday", "sonnabend"),
    ("sonntag", "so", "su", "sun", "sunday"),
)
_WEEKDAY = {name: index for index, names in enumerate(WEEKDAY_NAMES) for name in names}
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_RANGE = re.compile(r"^\s*(\S+?)\s*(?:-|–|—|\bbis\b|\bto\b)\s*(\S+)\s*$")
_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


@dataclass
class Where:
    """The place of a value, for problems: file, line, key path."""

    file: str
    line: int
    path: str


PeriodList = list[tuple[Period, Where]]


def child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node at ``key`` of a mapping node, if there is one."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None


def raw_text(node: yaml.Node | None) -> str | None:
    """The text of a scalar exactly as written (no YAML number conversion)."""
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        if node.value.strip() in ("", "~", "null", "Null", "NULL"):
            return None
        return node.value
    return None


def parse_time(text: str, *, end: bool = False) -> int | str:
    """Minutes after midnight, or a message saying what is wrong. ``24:00`` is
    allowed only as the end of a period."""
    match = _TIME.match(text.strip())
    if not match:
        return f"'{text}' is not a time like 08:00"
    hours, minutes = int(match[1]), int(match[2])
    value = hours * 60 + minutes
    if minutes > 59 or value > DAY_MINUTES or (value == DAY_MINUTES and not end):
        limit = "24:00" if end else "23:59"
        return f"'{text}' is not a time between 00:00 and {limit}"
    return value


def parse_period(text: str) -> Period | str:
    """A period like ``08:00-12:00``, or a message saying what is wrong."""
    match = _RANGE.match(text)
    if not match:
        return f"'{text}' is not a period like 08:00-12:00"
    start = parse_time(match[1])
    end = parse_time(match[2], end=True)
    if isinstance(start, str):
        return start
    if isinstance(end, str):
        return end
    if end < start:
        return (
            f"'{text}' ends before it starts; a period cannot cross midnight, "
            "split it into ...-24:00 and 00:00-..."
        )
    if end == start:
        return f"'{text}' is empty: it ends when it starts"
    return Period(start, end)


def parse_date(value: object) -> date | str:
    """A date from YAML (``2026-12-24`` is already a date) or ``24.12.2026``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        match = _GERMAN_DATE.match(text)
        if match:
            return date(int(match[3]), int(match[2]), int(match[1]))
        return date.fromisoformat(text)
    except ValueError:
        return f"'{text}' is not a date like 2026-12-24 or 24.12.2026"


def weekdays_of(key: str) -> tuple[int, ...] | str:
    """Weekday indexes (Monday = 0) of ``mo``, ``Dienstag``, ``thu`` or a range
    like ``mo-fr``; or a message saying what is wrong."""
    text = key.strip().lower()
    parts = [p.strip().rstrip(".") for p in re.split(r"\s*[-–]\s*", text)]
    if len(parts) > 2 or any(p not in _WEEKDAY for p in parts):
        return (
            f"'{key}' is not a weekday: use mo, di, mi, do, fr, sa, so (or "
            "mon..sun, Montag..Sonntag), or a range like mo-fr"
        )
    first, last = _WEEKDAY[parts[0]], _WEEKDAY[parts[-1]]
    return tuple((first + i) % 7 for i in range((last - first) % 7 + 1))


def read_periods(
    node: yaml.Node | None, where: Where, problems: Problems
) -> PeriodList:
    """The periods of a list (or a single text) of ``HH:MM-HH:MM`` values."""
    if node is None or (isinstance(node, yaml.ScalarNode) and raw_text(node) is None):
        return []
    entries: list[tuple[yaml.Node, Where]]
    if isinstance(node, yaml.SequenceNode):
        entries = [
            (n, Where(where.file, n.start_mark.line + 1, f"{where.path}[{i}]"))
            for i, n in enumerate(node.value)
        ]
    elif isinstance(node, yaml.ScalarNode):
        entries = [(node, where)]
    else:
        problems.add(where.file, where.line, where.path, _PERIODS_HELP)
        return []
    periods: PeriodList = []
    for entry, place in entries:
        text = raw_text(entry)
        if text is None or not isinstance(entry, yaml.ScalarNode):
            problems.add(place.file, place.line, place.path, _PERIODS_HELP)
            continue
        period = parse_period(text)
        if isinstance(period, str):
            problems.add(place.file, place.line, place.path, period)
        else:
            periods.append((period, place))
    return periods


def check_overlaps(
    periods: PeriodList, problems: Problems, day_name: str = ""
) -> tuple[Period, ...]:
    """Report every period that overlaps an earlier one; return them sorted."""
    seen: PeriodList = []
    for period, place in periods:
        for other, other_place in seen:
            if period.start < other.end and other.start < period.end:
                on = f" on {day_name}" if day_name else ""
                problems.add(
                    place.file,
                    place.line,
                    place.path,
                    f"{period} overlaps {other}{on} (line {other_place.line}, "
                    f"{other_place.path})",
                )
        seen.append((period, place))
    return tuple(sorted((p for p, _ in periods), key=lambda p: p.start))


def read_week(
    node: yaml.Node | None, where: Where, problems: Problems
) -> tuple[tuple[Period, ...], ...]:
    """Periods per weekday from a mapping like ``{mo: [...], mi-fr: [...]}``."""
    week: list[PeriodList] = [[] for _ in range(7)]
    if node is None or not isinstance(node, yaml.MappingNode):
        return ((),) * 7  # absent, or reported by the Section reading "hours"
    for key_node, value_node in node.value:
        key = str(key_node.value)
        place = Where(where.file, key_node.start_mark.line + 1, f"{where.path}.{key}")
        days = weekdays_of(key)
        if isinstance(days, str):
            problems.add(place.file, place.line, place.path, days)
            continue
        for period, period_place in read_periods(value_node, place, problems):
            for day in days:
                week[day].append((period, period_place))
    result = []
    reported: set[tuple[str, str]] = set()
    for day, periods in enumerate(week):
        scratch = Problems()
        result.append(check_overlaps(periods, scratch, WEEKDAY_NAMES[day][0].title()))
        for problem in scratch.items:
            # A range key (mo-fr) would report the same pair once per day.
            pair = (problem.path, problem.message.rsplit(" (line", 1)[-1])
            if pair not in reported:
                reported.add(pair)
                problems.items.append(problem)
    return tuple(result)


_PERIODS_HELP = 'must be a period like "08:00-12:00" or a list of them'
