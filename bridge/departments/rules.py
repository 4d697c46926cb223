"""Reading and checking ``departments.yaml``: the routing rules.

:func:`read_rules` reads a whole file into
:class:`~bridge.departments.model.RoutingRules`
and records every mistake (file, line, key path) in the section's problems, so that
``buergerchat check-config`` lists all of them at once. :func:`load_rules` is the
same for one file on its own (reloading), raising :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import yaml

from bridge.i18n import STAFF_LANGUAGES
from bridge.mail.settings import check_address
from bridge.privacy.settings import CASE_PERIODS
from bridge.yamlconf import Item, Problems, Section, check_matrix_id

from .model import (
    DAY_MINUTES,
    DEFAULT_AVERAGE_CASE_MINUTES,
    DEFAULT_COUNTRY,
    DEFAULT_INACTIVITY_CLOSE_MINUTES,
    DEFAULT_MAX_CASES_PER_STAFF,
    DEFAULT_STRATEGY,
    DEFAULT_TIMEZONE,
    STRATEGIES,
    Closure,
    DateException,
    Department,
    Period,
    RoutingRules,
    Staff,
    Topic,
)
from .schedule import (
    Where,
    check_overlaps,
    child,
    parse_date,
    parse_time,
    raw_text,
    read_periods,
    read_week,
)
from .video import read_video

__all__ = ["check_room", "load_rules", "read_rules"]

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SERVER = r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?"
# Room IDs of room version 12 have no server part (!hash), older ones do.
_ROOM_ID = re.compile(rf"^![A-Za-z0-9._~=\-/+]+(:{_SERVER})?$")
_ROOM_ALIAS = re.compile(rf"^#[^:\s]+:{_SERVER}$")
_NOT_A_COUNTRY = "'{}' is not a country code the holidays package knows, like DE"


def check_room(value: str) -> str | None:
    if _ROOM_ID.match(value) or _ROOM_ALIAS.match(value):
        return None
    return (
        f"'{value}' is not a Matrix room ID or alias like "
        "!AbCdEf:example.org or #bauen:example.org"
    )


def load_rules(path: Path) -> RoutingRules:
    """Read ``departments.yaml`` on its own; raise ConfigError listing every problem."""
    problems = Problems()
    rules = read_rules(Section.load(path, problems))
    problems.raise_if_any()
    return rules


def read_rules(section: Section) -> RoutingRules:
    """The routing rules of a ``departments.yaml`` section. Problems go into
    ``section.problems``; with any problem the result must not be used."""
    routing = section.section("routing")
    timezone = routing.get("timezone", str, DEFAULT_TIMEZONE, check=_check_timezone)
    country, subdivision = _read_holidays(routing)
    admin_room = routing.get("admin_room", str, None, check=check_room)
    admins = _read_admins(routing)
    use_presence = routing.get("use_presence", bool, True)
    inactivity = routing.get(
        "inactivity_close_minutes",
        float,
        DEFAULT_INACTIVITY_CLOSE_MINUTES,
        check=lambda v: None if v >= 0 else "must be 0 (never) or more",
    )
    default_department = routing.get("default_department", str, None)
    closures = tuple(_read_closures(routing))
    routing.finish()

    read = [_read_department(item) for item in section.items("departments", True)]
    departments = [r for r in read if r is not None]
    _check_ids(departments)
    ids = {r.department.id for r in departments}
    if default_department is not None and default_department not in ids:
        routing.error(_unknown(default_department, ids), "default_department")
    _check_fallbacks(departments, ids)
    _check_topics(departments)
    section.finish()
    if not read and not section.problems.items:
        section.error("at least one department is needed", "departments")
    return RoutingRules(
        departments=tuple(r.department for r in departments),
        timezone=timezone,
        country=country,
        subdivision=subdivision,
        closures=closures,
        admin_room=admin_room,
        default_department=default_department,
        admins=admins,
        use_presence=use_presence,
        inactivity_close_minutes=inactivity,
    )


def _read_admins(routing: Section) -> tuple[str, ...]:
    admins: list[str] = []
    for entry in routing.items("admins"):
        if not isinstance(entry.value, str):
            entry.error("must be a Matrix user ID like @name:example.org")
            continue
        problem = check_matrix_id(entry.value)
        if problem:
            entry.error(problem)
        elif entry.value not in admins:
            admins.append(entry.value)
    return tuple(admins)


@dataclass
class _Read:
    """A department as read, with the sections its cross-checks report on."""

    department: Department
    section: Section
    topic_items: list[tuple[Topic, Item]]


def _check_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{value}' is not a time zone name like Europe/Berlin"
    return None


def _read_holidays(routing: Section) -> tuple[str, str | None]:
    section = routing.section("holidays")
    countries = holidays.list_supported_countries(include_aliases=False)
    country = section.get(
        "country",
        str,
        DEFAULT_COUNTRY,
        check=lambda v: None if v in countries else _NOT_A_COUNTRY.format(v),
    )
    subdivision = section.get("subdivision", str, None)
    section.finish()
    if country is None or subdivision is None:
        return country or DEFAULT_COUNTRY, None
    table = holidays.country_holidays(country, years=[])
    codes = {code.lower(): code for code in table.subdivisions}
    aliases = getattr(table, "subdivisions_aliases", {}) or {}
    codes.update({alias.lower(): code for alias, code in aliases.items()})
    code = codes.get(subdivision.strip().lower())
    if code is None:
        known = ", ".join(c for c in table.subdivisions if len(c) <= 3)
        section.error(
            f"'{subdivision}' is not a Land (subdivision) of {country}; use one of "
            f"{known}",
            "subdivision",
        )
    return country, code


def _read_dates(sec: Section) -> tuple[date, date] | None:
    """The ``date`` (and optional ``end_date``) of a closure or an exception."""
    first = sec.get("date", (date, str), check=_date_problem)
    last = sec.get("end_date", (date, str), None, check=_date_problem)
    if first is None:
        return None
    first_day = parse_date(first)
    last_day = parse_date(last) if last is not None else first_day
    if isinstance(first_day, str) or isinstance(last_day, str):
        return None  # already reported by the check
    if last_day < first_day:
        sec.error(f"end_date {last_day} is before date {first_day}", "end_date")
        return None
    return first_day, last_day


def _date_problem(value: object) -> str | None:
    parsed = parse_date(value)
    return parsed if isinstance(parsed, str) else None


def _read_time(sec: Section, item: Item, key: str, default: int, end: bool) -> int:
    if sec.get(key, (str, int), None) is None:
        return default
    text = raw_text(child(item.node, key))
    value = parse_time(text or "", end=end)
    if isinstance(value, str):
        sec.error(value, key)
        return default
    return value


def _read_closures(routing: Section) -> list[Closure]:
    closures = []
    for item in routing.items("closures"):
        if not item.is_mapping():
            item.error("each closure must be a mapping with at least a date")
            continue
        sec = item.section()
        dates = _read_dates(sec)
        start = _read_time(sec, item, "from", 0, end=False)
        end = _read_time(sec, item, "until", DAY_MINUTES, end=True)
        note = sec.get("note", str, None)
        sec.finish()
        if start >= end:
            sec.error("'until' must be later than 'from'", "until")
        elif dates is not None:
            closures.append(Closure(dates[0], dates[1], start, end, note))
    return closures


def _read_department(item: Item) -> _Read | None:
    if not item.is_mapping():
        item.error("each department must be a mapping with id, name and staff")
        return None
    dep = item.section()
    dep_id = _read_department_id(dep)
    name = dep.get("name", str)
    staff = _read_staff(dep)
    topics = _read_topics(dep)
    team_room = _read_team_room(dep)
    inbox = dep.get("inbox", str, None, check=check_address)
    week = _read_hours(dep, item)
    exceptions = _read_exceptions(dep)
    max_cases = dep.get(
        "max_cases_per_staff", int, DEFAULT_MAX_CASES_PER_STAFF, check=_positive
    )
    strategy = dep.get("strategy", str, DEFAULT_STRATEGY, check=_check_strategy)
    fallback = dep.get("fallback", str, None)
    average = dep.get(
        "average_case_minutes", int, DEFAULT_AVERAGE_CASE_MINUTES, check=_positive
    )
    retention = _read_retention(dep)
    department = Department(
        id=dep_id or "",
        name=name or "",
        staff=staff,
        topics=tuple(t for t, _ in topics),
        team_room=team_room,
        inbox=inbox,
        week=week,
        exceptions=exceptions,
        max_cases_per_staff=max_cases,
        strategy=strategy,
        fallback=fallback,
        average_case_minutes=average,
        retention=retention,
        video=read_video(dep, item, staff, _read_hours, _read_exceptions),
    )
    dep.finish()
    return _Read(department, dep, topics)


def _read_retention(dep: Section) -> tuple[tuple[str, int], ...]:
    """``retention:`` of one department: any of the case periods, in days."""
    if not dep.has("retention"):
        return ()
    section = dep.section("retention")
    found = tuple(
        (name, section.get(name, int, check=_retention_days))
        for name in CASE_PERIODS
        if section.has(name)
    )
    section.finish()
    return tuple((name, days) for name, days in found if days is not None)


def _retention_days(value: int) -> str | None:
    return None if 0 <= value <= 36500 else "must be a number of days, 0 to 36500"


def _read_department_id(dep: Section) -> str | None:
    dep_id: str | None = dep.get("id", str)
    if dep_id is not None and not _ID.match(dep_id):
        dep.error(
            f"'{dep_id}' is not a valid id: use lower-case letters, digits, - "
            "and _, starting with a letter",
            "id",
        )
    return dep_id


def _read_team_room(dep: Section) -> str | None:
    """The room for new-case announcements: required, with a hint when missing."""
    if dep.has("team_room"):
        team_room: str | None = dep.get("team_room", str, check=check_room)
        return team_room
    dep.error(
        "team room missing: name the room where the bot announces new cases, "
        'e.g. team_room: "#team-bauen:example.org"',
        "team_room",
    )
    return None


def _read_hours(dep: Section, item: Item) -> tuple[tuple[Period, ...], ...]:
    """The department's opening hours per weekday (``hours:``)."""
    hours_node = child(item.node, "hours")
    if isinstance(hours_node, yaml.MappingNode):
        dep.section("hours")  # reports duplicate weekday keys
    else:
        dep.get("hours", dict, None)
    return read_week(
        hours_node,
        Where(dep.file, dep.line_of("hours"), f"{item.path}.hours"),
        dep.problems,
    )


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _check_strategy(value: str) -> str | None:
    if value in STRATEGIES:
        return None
    return f"unknown strategy '{value}'; use one of {', '.join(STRATEGIES)}"


def _check_language(value: str) -> str | None:
    if value in STAFF_LANGUAGES:
        return None
    return f"unknown language '{value}'; use one of {', '.join(STAFF_LANGUAGES)}"


def _check_topic_id(value: str) -> str | None:
    if _TOPIC_ID.match(value):
        return None
    return f"'{value}' is not a valid topic id: use lower-case letters, digits, - and _"


def _read_staff(dep: Section) -> tuple[Staff, ...]:
    staff: list[Staff] = []
    lines: dict[str, int] = {}
    entries = 0
    for entry in dep.items("staff", required=True):
        entries += 1
        if isinstance(entry.value, str):
            problem = check_matrix_id(entry.value)
            person = Staff(entry.value, None)
            if problem:
                entry.error(problem)
                continue
        elif entry.is_mapping():
            sec = entry.section()
            mxid = sec.get("id", str, check=check_matrix_id)
            language = sec.get("language", str, Staff.language, check=_check_language)
            person = Staff(mxid, sec.get("name", str, None), language)
            sec.finish()
            if mxid is None:
                continue
        else:
            entry.error("must be a Matrix ID or a mapping with id and name")
            continue
        if person.mxid in lines:
            entry.error(f"{person.mxid} is listed twice (line {lines[person.mxid]})")
            continue
        lines[person.mxid] = entry.line
        staff.append(person)
    if entries == 0 and dep.has("staff"):
        dep.error("at least one staff member is needed", "staff")
    return tuple(staff)


def _read_topics(dep: Section) -> list[tuple[Topic, Item]]:
    topics = []
    for entry in dep.items("topics"):
        if not entry.is_mapping():
            entry.error("each topic must be a mapping with id and label")
            continue
        sec = entry.section()
        topic_id = sec.get(
            "id",
            str,
            check=_check_topic_id,
        )
        label = sec.get("label", str)
        sec.finish()
        if topic_id is not None and label is not None:
            topics.append((Topic(topic_id, label), entry))
    return topics


def _read_exceptions(dep: Section) -> tuple[DateException, ...]:
    exceptions: list[tuple[DateException, Section]] = []
    for item in dep.items("exceptions"):
        if not item.is_mapping():
            item.error("each exception must be a mapping with at least a date")
            continue
        sec = item.section()
        dates = _read_dates(sec)
        closed = sec.get("closed", bool, False)
        sec.get("hours", object, None)  # read_periods names what is wrong
        where = Where(sec.file, sec.line_of("hours"), f"{item.path}.hours")
        found = read_periods(child(item.node, "hours"), where, sec.problems)
        periods = check_overlaps(found, sec.problems)
        note = sec.get("note", str, None)
        sec.finish()
        if closed and periods:
            sec.error("give either 'closed: true' or 'hours', not both", "closed")
        if dates is None:
            continue
        exception = DateException(dates[0], dates[1], () if closed else periods, note)
        for other, other_sec in exceptions:
            if exception.first <= other.last and other.first <= exception.last:
                sec.error(
                    f"overlaps the exception from {other.first} (line "
                    f"{other_sec.line_of('date')})",
                    "date",
                )
        exceptions.append((exception, sec))
    return tuple(e for e, _ in exceptions)


def _check_ids(departments: list[_Read]) -> None:
    seen: dict[str, int] = {}
    for read in departments:
        dep_id = read.department.id
        if not dep_id:
            continue
        if dep_id in seen:
            read.section.error(
                f"department id '{dep_id}' is used twice (line {seen[dep_id]})", "id"
            )
        else:
            seen[dep_id] = read.section.line_of("id")


def _unknown(dep_id: str, ids: set[str]) -> str:
    known = sorted(i for i in ids if i)
    hint = difflib.get_close_matches(dep_id, known, n=1)
    tip = f"did you mean '{hint[0]}'? " if hint else ""
    return f"unknown department '{dep_id}'; {tip}known are: {', '.join(known)}"


def _check_fallbacks(departments: list[_Read], ids: set[str]) -> None:
    by_id = {r.department.id: r for r in departments}
    in_cycle: set[str] = set()
    for read in departments:
        fallback = read.department.fallback
        if fallback is None:
            continue
        if fallback not in ids:
            read.section.error(_unknown(fallback, ids), "fallback")
            continue
        path = [read.department.id]
        current: str | None = fallback
        while current is not None and current in by_id and current not in path:
            path.append(current)
            current = by_id[current].department.fallback
        if current != read.department.id or read.department.id in in_cycle:
            continue
        in_cycle.update(path)
        if len(path) == 1:
            message = "a department cannot fall back to itself"
        else:
            message = "fallback cycle: " + " → ".join([*path, path[0]])
        read.section.error(message, "fallback")


def _check_topics(departments: list[_Read]) -> None:
    owner: dict[str, tuple[str, int]] = {}
    for read in departments:
        for topic, item in read.topic_items:
            if topic.id in owner:
                dep_id, line = owner[topic.id]
                item.error(
                    f"topic '{topic.id}' is already offered by department "
                    f"'{dep_id}' (line {line}); a topic belongs to one department"
                )
            else:
                owner[topic.id] = (read.department.id, item.line)
