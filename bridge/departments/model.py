"""The routing rules as plain, frozen data: departments, their hours and closures.

Read from ``departments.yaml`` by :mod:`bridge.departments.rules`; used by the pure
functions in :mod:`bridge.departments.office_hours` and :mod:`bots.routing.strategy`.
Times are minutes after local midnight (0–1440) so that "24:00" can end a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import holidays

if TYPE_CHECKING:
    from .video import VideoOffice

Strategy = Literal["broadcast", "round_robin", "least_busy"]
STRATEGIES: tuple[Strategy, ...] = ("broadcast", "round_robin", "least_busy")

DEFAULT_TIMEZONE = "Europe/Berlin"
DEFAULT_COUNTRY = "DE"
DEFAULT_MAX_CASES_PER_STAFF = 3
DEFAULT_STRATEGY: Strategy = "broadcast"
DEFAULT_AVERAGE_CASE_MINUTES = 10
DEFAULT_INACTIVITY_CLOSE_MINUTES = 120.0
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Period:
    """A live period in wall-clock minutes: from ``start`` up to, not including,
    ``end``."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{format_minutes(self.start)}-{format_minutes(self.end)}"


DEFAULT_STAFF_LANGUAGE = "de"


@dataclass(frozen=True)
class Staff:
    mxid: str
    name: str | None = None
    #: What the bots answer this person in: one of bridge.i18n.STAFF_LANGUAGES.
    language: str = DEFAULT_STAFF_LANGUAGE


@dataclass(frozen=True)
class Topic:
    """What a citizen picks in the widget; it decides the department."""

    id: str
    label: str


@dataclass(frozen=True)
class DateException:
    """Other hours of one department on the dates ``first``–``last``; none = closed."""

    first: date
    last: date
    periods: tuple[Period, ...] = ()
    note: str | None = None

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class Closure:
    """The whole administration is closed on ``first``–``last``, each day from
    ``start`` until ``end`` (minutes; a half-day closure has start 720, end 1440)."""

    first: date
    last: date
    start: int = 0
    end: int = DAY_MINUTES
    note: str | None = None

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    staff: tuple[Staff, ...]
    topics: tuple[Topic, ...] = ()
    team_room: str | None = None
    #: E-mail address that receives offline messages (``inbox:``); none = no mail.
    inbox: str | None = None
    # Periods per weekday, Monday first (index = date.weekday()).
    week: tuple[tuple[Period, ...], ...] = ((),) * 7
    exceptions: tuple[DateException, ...] = ()
    max_cases_per_staff: int = DEFAULT_MAX_CASES_PER_STAFF
    strategy: Strategy = DEFAULT_STRATEGY
    fallback: str | None = None
    average_case_minutes: int = DEFAULT_AVERAGE_CASE_MINUTES
    #: The department's own retention periods (``retention:``), by name
    #: (bridge.privacy.settings.CASE_PERIODS); the rest come from buergerchat.yaml.
    retention: tuple[tuple[str, int], ...] = ()
    #: Video appointments (``video:``; bridge.departments.video.VideoOffice).
    video: VideoOffice | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages its staff read (``language:``), each once: what its
        team room's notices are written in (bridge.i18n.for_readers)."""
        return tuple(dict.fromkeys(s.language for s in self.staff))

    def exception_on(self, day: date) -> DateException | None:
        return next((e for e in self.exceptions if e.covers(day)), None)


@dataclass(frozen=True)
class RoutingRules:
    """Everything ``departments.yaml`` says; the input of every routing decision."""

    departments: tuple[Department, ...]
    timezone: str = DEFAULT_TIMEZONE
    country: str = DEFAULT_COUNTRY
    subdivision: str | None = None
    closures: tuple[Closure, ...] = ()
    admin_room: str | None = None
    default_department: str | None = None
    #: Matrix IDs invited to ``admin_room``.
    admins: tuple[str, ...] = ()
    #: Skip staff whose Synapse presence is not ``online``; False: all count online.
    use_presence: bool = True
    #: Close a live or queued case after this long without a message; 0 = never.
    inactivity_close_minutes: float = DEFAULT_INACTIVITY_CLOSE_MINUTES
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)

    def fallback_department(self) -> Department | None:
        """Where unknown topics go: ``default_department``, else the first one."""
        if self.default_department is not None:
            return self.department(self.default_department)
        return self.departments[0] if self.departments else None

    def department_for_topic(self, topic_id: str | None) -> Department | None:
        """The department a citizen's topic belongs to; unknown topics go to the
        default department."""
        for department in self.departments:
            if any(t.id == topic_id for t in department.topics):
                return department
        return self.fallback_department()

    def topic(self, topic_id: str) -> Topic | None:
        for department in self.departments:
            for topic in department.topics:
                if topic.id == topic_id:
                    return topic
        return None

    def topic_label(self, topic_id: str | None) -> str | None:
        """What people read for a topic: its label; a topic the rules do not
        (or no longer) know, as it was given."""
        if not topic_id:
            return None
        known = self.topic(topic_id)
        return known.label if known else topic_id

    def holiday(self, day: date) -> str | None:
        """The German name of the public holiday on ``day``, if it is one."""
        return public_holidays(self.country, self.subdivision, day.year).get(day)

    def closure_on(self, day: date) -> tuple[Closure, ...]:
        return tuple(c for c in self.closures if c.covers(day))


@lru_cache(maxsize=64)
def public_holidays(
    country: str, subdivision: str | None, year: int
) -> dict[date, str]:
    """Public holidays of one year, named in German where the package can."""
    languages = holidays.list_localized_countries().get(country, [])
    language = "de" if "de" in languages else None
    table = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=language
    )
    return dict(table.items())


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
