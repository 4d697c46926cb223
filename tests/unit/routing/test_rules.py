"""Reading and checking departments.yaml (bridge.departments.rules) and check-config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.departments.model import Period
from bridge.departments.office_hours import is_live
from bridge.departments.rules import check_room, load_rules
from bridge.yamlconf import ConfigError

from .build import ANNA, BERND, local

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "routing"
EXAMPLE = REPO / "config" / "departments.yaml"

PLANTED = [
    ("overlapping_periods", 10, "departments[0].hours.mo[1]", "overlaps 08:00-12:00"),
    ("overlapping_range", 10, "departments[0].hours.donnerstag[0]", "overlaps"),
    ("unknown_weekday", 9, "departments[0].hours.mx", "is not a weekday"),
    ("bad_time", 8, "departments[0].hours.di[1]", "'25:00' is not a time"),
    ("end_before_start", 12, "departments[1].hours.mi", "ends before it starts"),
    ("staff_not_matrix_id", 9, "departments[0].staff[1].id", "not a Matrix user ID"),
    ("team_room_malformed", 6, "departments[0].team_room", "not a Matrix room"),
    ("unknown_fallback", 11, "departments[1].fallback", "did you mean 'buergerbuero'"),
    (
        "fallback_cycle",
        7,
        "departments[0].fallback",
        "fallback cycle: buergerbuero → bauen → standesamt → buergerbuero",
    ),
    ("fallback_self", 7, "departments[0].fallback", "fall back to itself"),
    ("duplicate_topic", 17, "departments[1].topics[1]", "already offered by"),
    ("unknown_strategy", 7, "departments[0].strategy", "unknown strategy 'random'"),
    ("unknown_land", 5, "routing.holidays.subdivision", "'BA' is not a Land"),
    ("unknown_country", 4, "routing.holidays.country", "'GER' is not a country"),
    ("unknown_timezone", 3, "routing.timezone", "not a time zone"),
    ("unknown_default_department", 3, "routing.default_department", "'rathaus'"),
    ("admin_room_malformed", 3, "routing.admin_room", "not a Matrix room"),
    ("closure_until_before_from", 6, "routing.closures[0].until", "later than"),
    ("bad_date", 4, "routing.closures[0].date", "'30.02.2026' is not a date"),
    ("exception_closed_and_hours", 9, "departments[0].exceptions[0].closed", "both"),
    ("exceptions_overlap", 11, "departments[0].exceptions[1].date", "(line 8)"),
    ("misspelt_key", 7, "departments[0].strategie", "did you mean 'strategy'"),
    ("duplicate_department", 7, "departments[1].id", "used twice (line 3)"),
    ("no_staff", 6, "departments[0].staff", "at least one staff member"),
    ("max_cases_zero", 7, "departments[0].max_cases_per_staff", "greater than 0"),
    ("hours_not_a_mapping", 7, "departments[0].hours", "must be a mapping"),
    ("team_room_missing", 3, "departments[0].team_room", "team room missing"),
]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    return [str(p) for p in caught.value.problems]


def planted_lines(path: Path) -> set[int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {n for n, line in enumerate(lines, 1) if "# planted" in line}


@pytest.mark.parametrize(("name", "line", "key", "message"), PLANTED)
def test_planted_mistake_is_named_with_file_line_and_key(
    name: str, line: int, key: str, message: str
) -> None:
    """Each broken file gives exactly one problem at the planted line and key."""
    path = FIXTURES / f"{name}.yaml"
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line}: {key}: ")
    assert message in problem


def test_every_fixture_is_in_the_table() -> None:
    """A new fixture without an expectation in PLANTED is a forgotten test."""
    names = {p.stem for p in FIXTURES.glob("*.yaml")} - {"many_mistakes"}
    assert names == {row[0] for row in PLANTED}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_problems_are_reported_exactly_on_the_planted_lines(path: Path) -> None:
    """The lines marked '# planted' and the lines reported are the same set."""
    reported = {int(p.split(":")[1]) for p in problems_of(path)}
    assert reported == planted_lines(path)


def test_all_mistakes_of_a_file_are_reported_at_once() -> None:
    """One run lists every mistake, so the admin fixes them in one go."""
    problems = problems_of(FIXTURES / "many_mistakes.yaml")
    keys = [p.split(": ")[1] for p in problems]
    assert keys == [
        "routing.timezone",
        "departments[0].staff[0]",
        "departments[0].hours.sonntag[0]",
        "departments[0].strategy",
        "departments[0].fallback",
    ]


def test_check_config_prints_each_problem_and_fails(tmp_path: Path) -> None:
    """`python -m bridge check-config` prints file:line: key: message, exits 1."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    shutil.copy(FIXTURES / "fallback_cycle.yaml", config / "departments.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config"],
        cwd=REPO,
        env={**os.environ, "BUERGERCHAT_CONFIG_DIR": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        f"{config / 'departments.yaml'}:7: departments[0].fallback: fallback cycle"
        in result.stderr
    )
    assert "1 problem(s) found." in result.stderr


# --- the example config ---------------------------------------------------------


def test_example_config_is_valid_and_keeps_the_demo_staff() -> None:
    """config/ loads; Anna (Bürgerbüro) and Bernd (Bauen) keep their names."""
    config = load_config(REPO / "config", REPO / "data")
    buero, bauen = config.department("buergerbuero"), config.department("bauen")
    assert buero is not None and bauen is not None
    assert [(s.mxid, s.name) for s in buero.staff] == [(ANNA, "Anna Schmidt")]
    assert [(s.mxid, s.name) for s in bauen.staff] == [(BERND, "Bernd Keller")]
    assert config.all_staff()[ANNA].name == "Anna Schmidt"


def test_example_departments_are_live_on_weekday_mornings() -> None:
    """The demo works: every example department is live Monday to Friday at 10:00
    on ordinary weeks, and none at night or on Sunday."""
    rules = load_rules(EXAMPLE)
    for department in rules.departments:
        for day in range(23, 28):  # 23.–27.11.2026, no holidays
            assert is_live(department, rules, local(2026, 11, day, 10, 0)).live
        assert not is_live(department, rules, local(2026, 11, 24, 22, 0)).live
        assert not is_live(department, rules, local(2026, 11, 29, 10, 0)).live


def test_example_has_the_hockenheim_consultation_slots() -> None:
    """Bauen und Wohnen Wednesday 08:00-09:30, Bürgerbüro Thursday 09:00-12:00."""
    rules = load_rules(EXAMPLE)
    bauen, buero = rules.department("bauen"), rules.department("buergerbuero")
    assert bauen is not None and buero is not None
    assert Period(8 * 60, 9 * 60 + 30) in bauen.week[2]
    assert Period(9 * 60, 12 * 60) in buero.week[3]


def test_example_topics_map_to_departments_and_unknown_ones_to_the_default() -> None:
    """A topic picks its department; an unknown topic goes to the default."""
    rules = load_rules(EXAMPLE)

    def department_of(topic: str | None) -> str | None:
        found = rules.department_for_topic(topic)
        return found.id if found else None

    assert department_of("baustellen") == "bauen"
    assert department_of("geburt") == "standesamt"
    assert department_of("hundesteuer") == "buergerbuero"
    assert department_of(None) == "buergerbuero"


def test_example_half_day_on_christmas_eve() -> None:
    """Heiligabend 2026 (a Thursday) is live in the morning only."""
    rules = load_rules(EXAMPLE)
    buero = rules.department("buergerbuero")
    assert buero is not None
    assert is_live(buero, rules, local(2026, 12, 24, 10, 0)).live
    status = is_live(buero, rules, local(2026, 12, 24, 14, 30))
    assert not status.live
    assert status.note == "Heiligabend"


# --- small readers --------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
departments:
  - id: buergerbuero
    name: "Bürgerbüro"
    staff: ["@anna.schmidt:buergerchat.localhost"]
    team_room: "#team:buergerchat.localhost"
"""


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    """Without a routing section: Berlin, nationwide holidays, broadcast, 3 cases."""
    rules = load_rules(write(tmp_path, MINIMAL))
    (dep,) = rules.departments
    assert (rules.timezone, rules.country, rules.subdivision) == (
        "Europe/Berlin",
        "DE",
        None,
    )
    assert (dep.strategy, dep.max_cases_per_staff, dep.fallback) == (
        "broadcast",
        3,
        None,
    )
    assert dep.team_room == "#team:buergerchat.localhost"
    assert (rules.admins, rules.use_presence, rules.inactivity_close_minutes) == (
        (),
        True,
        120,
    )
    assert rules.fallback_department() is dep
    assert dep.week == ((),) * 7


def test_weekday_names_in_german_and_english_mean_the_same(tmp_path: Path) -> None:
    """Montag, mo, Mon, monday, … and a range like Mi-Fr all name the right days."""
    text = (
        MINIMAL
        + """    hours:
      Montag: ["08:00-09:00"]
      tue: ["08:00-09:00"]
      Mi-Fr: ["10:00-11:00"]
      sonnabend: ["07:00-08:00"]
      Sunday: ["07:00-08:00"]
"""
    )
    (dep,) = load_rules(write(tmp_path, text)).departments
    early, late, weekend = Period(480, 540), Period(600, 660), Period(420, 480)
    assert dep.week == (
        (early,),
        (early,),
        (late,),
        (late,),
        (late,),
        (weekend,),
        (weekend,),
    )


def test_unquoted_times_and_german_dates_are_understood(tmp_path: Path) -> None:
    """from: 12:00 without quotes (YAML's number 720) and 24.12.2026 both work."""
    text = """
routing:
  holidays:
    subdivision: Hessen
  closures:
    - date: 24.12.2026
      from: 12:00
departments:
  - id: buergerbuero
    name: "Bürgerbüro"
    staff: ["@anna.schmidt:buergerchat.localhost"]
    team_room: "#team:buergerchat.localhost"
    hours:
      do: [8:00-12:00, 14.00 - 16.00]
"""
    rules = load_rules(write(tmp_path, text))
    (closure,) = rules.closures
    assert (closure.first, closure.start, closure.end) == (
        date(2026, 12, 24),
        720,
        1440,
    )
    assert rules.subdivision == "HE"
    assert rules.departments[0].week[3] == (Period(480, 720), Period(840, 960))


@pytest.mark.parametrize(
    ("room", "ok"),
    [
        ("!AbCdEf:buergerchat.localhost", True),
        ("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM", True),  # room version 12
        ("#team-bauen:musterstadt.de", True),
        ("#team-bauen:matrix.musterstadt.de:8448", True),
        ("#team-bauen", False),
        ("team-bauen:musterstadt.de", False),
        ("@bernd.keller:musterstadt.de", False),
        ("#team bauen:musterstadt.de", False),
    ],
)
def test_team_room_format(room: str, ok: bool) -> None:
    """Room IDs (with or without server, v12) and aliases pass; the rest fails."""
    assert (check_room(room) is None) is ok


def test_admins_presence_and_inactivity_settings(tmp_path: Path) -> None:
    """routing.admins, use_presence and inactivity_close_minutes are read as given;
    a fraction of a minute is allowed, a negative time and a bad admin ID are not."""
    good = 'routing:\n  admins: ["@root:example.org"]\n  use_presence: false\n'
    good += "  inactivity_close_minutes: 0.5\n" + MINIMAL
    rules = load_rules(write(tmp_path, good))
    assert rules.admins == ("@root:example.org",)
    assert rules.use_presence is False
    assert rules.inactivity_close_minutes == 0.5
    bad = "routing:\n  admins: [root]\n  inactivity_close_minutes: -1\n" + MINIMAL
    problems = problems_of(write(tmp_path, bad))
    assert [p.split(": ")[1] for p in problems] == [
        "routing.admins[0]",
        "routing.inactivity_close_minutes",
    ]
