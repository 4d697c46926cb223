"""The waiting line and staff load (bots.routing.queue) and reloading the rules
file (bots.routing.reload)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from bots.routing.queue import (
    OpenCase,
    QueuePlace,
    is_inactive,
    last_pointers,
    open_cases_per_staff,
    queue_places,
)
from bots.routing.reload import RulesWatcher
from bots.routing.strategy import choose_staff
from bridge.departments.rules import load_rules

from .build import ANNA, BERND, CLARA, department, utc

REPO = Path(__file__).resolve().parents[3]


def test_claimed_case_counts_for_its_assignee_only() -> None:
    """A claimed case is one case of whoever claimed it, not of all invited."""
    counts = open_cases_per_staff(
        [OpenCase("c1", "d", "live", assignee=ANNA, invited=(ANNA, BERND))]
    )
    assert counts == {ANNA: 1}


def test_unclaimed_case_counts_for_everyone_invited() -> None:
    """Broadcast: until someone claims, each invited person has the case open."""
    counts = open_cases_per_staff(
        [
            OpenCase("c1", "d", "live", invited=(ANNA, BERND)),
            OpenCase("c2", "d", "live", invited=(ANNA,)),
        ]
    )
    assert counts == {ANNA: 2, BERND: 1}


def test_queued_cases_do_not_count_as_load() -> None:
    """Waiting citizens occupy nobody."""
    counts = open_cases_per_staff([OpenCase("c1", "d", "queued", invited=())])
    assert counts == {}


def test_a_video_call_fills_its_staff_member() -> None:
    """Whoever is in a video appointment's call counts as full (more than any
    max_cases_per_staff), so no chat is routed to them meanwhile."""
    counts = open_cases_per_staff(
        [
            OpenCase("c1", "d", "in_call", invited=(ANNA,)),
            OpenCase("c2", "d", "live", invited=(BERND,)),
        ]
    )
    assert counts[ANNA] >= 10**9 and counts[BERND] == 1


def test_positions_follow_the_order_of_opening_with_growing_waits() -> None:
    """1, 2, 3 …; one person with 8-minute cases: waits 8, 16, 24 minutes."""
    dep = department(staff=(ANNA,), average_case_minutes=8, max_cases_per_staff=1)
    places = queue_places(dep, ["a", "b", "c"], None)
    assert places == {
        "a": QueuePlace(1, 8),
        "b": QueuePlace(2, 16),
        "c": QueuePlace(3, 24),
    }
    assert places["b"].as_json() == {"position": 2, "estimated_wait_minutes": 16}


def test_more_people_online_shorten_the_wait() -> None:
    """Two people online with 2 cases each serve 4 at once: a quarter of the wait."""
    dep = department(
        staff=(ANNA, BERND, CLARA), average_case_minutes=20, max_cases_per_staff=2
    )
    both = queue_places(dep, ["a"], {ANNA: "online", BERND: "online"})
    one = queue_places(dep, ["a"], {ANNA: "online", BERND: "unavailable"})
    assert both["a"].estimated_wait_minutes == 5
    assert one["a"].estimated_wait_minutes == 10


def test_positions_count_down_as_the_head_leaves() -> None:
    """Without the first case every later citizen moves up by one."""
    dep = department(staff=(ANNA,), max_cases_per_staff=1)
    before = queue_places(dep, ["a", "b", "c"], None)
    after = queue_places(dep, ["b", "c"], None)
    assert [before[c].position for c in "bc"] == [2, 3]
    assert [after[c].position for c in "bc"] == [1, 2]


def test_round_robin_pointer_is_the_latest_single_pick() -> None:
    """History: the person picked alone most recently per department; broadcast
    cases (several invited) say nothing about the rotation."""
    pointers = last_pointers(
        [
            ("bb", "2026-11-19T09:00:00+00:00", (ANNA,)),
            ("bb", "2026-11-19T09:05:00+00:00", (BERND,)),
            ("bb", "2026-11-19T09:06:00+00:00", (ANNA, BERND)),
            ("bauen", "2026-11-19T08:00:00+00:00", (CLARA,)),
            ("bb", "", ()),
        ]
    )
    assert pointers == {"bb": BERND, "bauen": CLARA}


def test_rotation_continues_after_a_restart() -> None:
    """Pointers derived from history make round robin pick the next person."""
    dep = department(staff=(ANNA, BERND, CLARA), strategy="round_robin")
    pointers = last_pointers([("buergerbuero", "t1", (BERND,))])
    invite, _ = choose_staff(dep, None, {}, pointers.get("buergerbuero"))
    assert invite == (CLARA,)


def test_inactivity_edges() -> None:
    """Exactly the configured time closes; a moment less does not; 0 never does."""
    start = utc(2026, 11, 19, 9)
    assert is_inactive(start, start + timedelta(minutes=120), 120)
    assert not is_inactive(start, start + timedelta(minutes=119, seconds=59), 120)
    assert is_inactive(start, start + timedelta(seconds=6), 0.1)
    assert not is_inactive(start, start + timedelta(days=30), 0)


def _watcher(tmp_path: Path) -> tuple[RulesWatcher, SimpleNamespace, Path]:
    shutil.copy(REPO / "config" / "departments.yaml", tmp_path / "departments.yaml")
    path = tmp_path / "departments.yaml"
    rules = load_rules(path)
    config = SimpleNamespace(config_dir=tmp_path, routing=rules, departments=())

    def replace_rules(new: object) -> None:
        config.routing = new

    config.replace_rules = replace_rules
    return RulesWatcher(config), config, path  # type: ignore[arg-type]


async def test_reload_takes_a_good_edit(tmp_path: Path) -> None:
    """An unchanged file reloads nothing; a good edit replaces the rules."""
    watcher, config, path = _watcher(tmp_path)
    await watcher.baseline()
    assert await watcher.check() == (None, [])
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "max_cases_per_staff: 2", "max_cases_per_staff: 5"
        ),
        encoding="utf-8",
    )
    rules, problems = await watcher.check()
    assert problems == [] and rules is config.routing
    assert config.routing.department("bauen").max_cases_per_staff == 5


async def test_reload_keeps_the_last_good_rules_on_a_broken_edit(
    tmp_path: Path,
) -> None:
    """A broken edit names file:line:key, keeps the rules, and is reported once."""
    watcher, config, path = _watcher(tmp_path)
    good = config.routing
    await watcher.baseline()
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("strategy: least_busy", "strategy: fastest"), "utf-8")
    rules, problems = await watcher.check()
    assert rules is None and config.routing is good
    (problem,) = problems
    line = next(
        n
        for n, row in enumerate(path.read_text("utf-8").splitlines(), 1)
        if "fastest" in row
    )
    assert problem.startswith(f"{path}:{line}: departments[1].strategy: ")
    assert await watcher.check() == (None, [])  # the same broken file: told once
