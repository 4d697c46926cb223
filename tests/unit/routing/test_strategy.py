"""Who is invited to a new case, and what a queued citizen is told
(bots.routing.strategy)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from bots.routing.strategy import (
    available_staff,
    choose_staff,
    estimate_wait,
    fallback_chain,
    free_staff,
    route,
    serving_slots,
)
from bridge.departments.model import Department, RoutingRules

from .build import ANNA, BERND, CLARA, department, local, rules

TEAM = (ANNA, BERND, CLARA)
ALL_ONLINE = {m: "online" for m in TEAM}
OPEN_MONDAY = local(2026, 11, 23, 10, 0)  # Monday, 10:00
CLOSED_MONDAY = local(2026, 11, 23, 19, 0)


def team(strategy: str, max_cases: int = 3, **fields: object) -> Department:
    return department(
        "buergerbuero",
        hours={"mo-fr": ["08:00-12:00"]},
        staff=TEAM,
        strategy=strategy,
        max_cases_per_staff=max_cases,
        **fields,
    )


# --- strategies -----------------------------------------------------------------


def test_round_robin_distributes_evenly_over_many_cases() -> None:
    """300 short cases over three free people: exactly 100 each, in turn."""
    dep = team("round_robin")
    pointer: str | None = None
    picks: list[str] = []
    for _ in range(300):
        invite, pointer = choose_staff(dep, ALL_ONLINE, {}, pointer)
        picks.extend(invite)
    assert Counter(picks) == {ANNA: 100, BERND: 100, CLARA: 100}
    assert picks[:4] == [ANNA, BERND, CLARA, ANNA]


def test_round_robin_continues_after_the_stored_pointer() -> None:
    """The persisted pointer decides who is next, also after a restart."""
    invite, pointer = choose_staff(team("round_robin"), ALL_ONLINE, {}, BERND)
    assert invite == (CLARA,)
    assert pointer == CLARA


def test_round_robin_skips_offline_and_full_staff() -> None:
    """After Anna, Bernd is offline and Clara full: Anna gets the case again."""
    presence = {ANNA: "online", BERND: "offline", CLARA: "online"}
    invite, _ = choose_staff(team("round_robin"), presence, {CLARA: 3}, ANNA)
    assert invite == (ANNA,)


def test_round_robin_with_a_pointer_to_someone_who_left() -> None:
    """A pointer to a person no longer in the department starts from the top."""
    invite, _ = choose_staff(team("round_robin"), ALL_ONLINE, {}, "@old:example.org")
    assert invite == (ANNA,)


def test_least_busy_picks_the_least_loaded() -> None:
    """With 2, 0 and 1 open cases, the person with none is invited."""
    invite, pointer = choose_staff(
        team("least_busy"), ALL_ONLINE, {ANNA: 2, BERND: 0, CLARA: 1}
    )
    assert invite == (BERND,)
    assert pointer == BERND


def test_least_busy_ties_take_turns() -> None:
    """Equally loaded staff are picked in rotation, not always the first."""
    dep = team("least_busy")
    pointer: str | None = None
    picks: list[str] = []
    for _ in range(6):
        invite, pointer = choose_staff(dep, ALL_ONLINE, {}, pointer)
        picks.extend(invite)
    assert picks == [ANNA, BERND, CLARA, ANNA, BERND, CLARA]


def test_least_busy_always_picks_someone_with_the_fewest_open_cases() -> None:
    """Over 200 cases with random closings, every case goes to a least loaded person."""
    dep = team("least_busy", max_cases=1000)
    rng = random.Random(7)
    load = Counter({m: 0 for m in TEAM})
    pointer: str | None = None
    for _ in range(200):
        (pick,), pointer = choose_staff(dep, ALL_ONLINE, load, pointer)
        assert load[pick] == min(load.values())
        load[pick] += 1
        if rng.random() < 0.3:
            closing = rng.choice([m for m in TEAM if load[m]])
            load[closing] -= 1
    assert sum(load.values()) > 0


def test_broadcast_invites_all_free_staff() -> None:
    """Broadcast invites everyone online with room; the full and away are left out."""
    presence = {ANNA: "online", BERND: "online", CLARA: "unavailable"}
    invite, pointer = choose_staff(team("broadcast"), presence, {BERND: 3}, None)
    assert invite == (ANNA,)
    assert pointer is None
    invite, _ = choose_staff(team("broadcast"), ALL_ONLINE, {}, None)
    assert invite == TEAM


@pytest.mark.parametrize("state", ["offline", "unavailable"])
def test_staff_who_are_not_online_are_skipped(state: str) -> None:
    """Presence 'offline' and 'unavailable' both mean: not at the desk."""
    presence = {ANNA: state, BERND: "online", CLARA: state}
    assert available_staff(team("broadcast"), presence) == (BERND,)


def test_staff_without_presence_count_as_offline() -> None:
    """A person missing from the presence map is not invited."""
    assert available_staff(team("broadcast"), {ANNA: "online"}) == (ANNA,)


def test_presence_not_tracked_means_everyone_counts() -> None:
    """presence=None (presence disabled in Synapse): all staff are available."""
    assert available_staff(team("broadcast"), None) == TEAM


def test_open_cases_of_other_departments_count_too() -> None:
    """Open cases are per person: Anna's two cases elsewhere fill her limit of 2."""
    dep = team("broadcast", max_cases=2)
    assert free_staff(dep, ALL_ONLINE, {ANNA: 2}) == (BERND, CLARA)


# --- the decision ---------------------------------------------------------------


def test_open_with_free_staff_goes_live() -> None:
    """Open and someone free: live, invite by the strategy, pointer stored."""
    dep = team("round_robin")
    decision = route(rules(dep), dep, OPEN_MONDAY, ALL_ONLINE, {}, {"x": "y"})
    assert decision.kind == "live"
    assert decision.reason == "free_staff"
    assert decision.invite == (ANNA,)
    assert decision.pointers == {"x": "y", "buergerbuero": ANNA}
    assert decision.status.until == local(2026, 11, 23, 12, 0)


def test_route_does_not_change_the_pointers_passed_in() -> None:
    """The caller's pointer mapping is left alone; the new state is returned."""
    dep = team("round_robin")
    pointers = {"buergerbuero": ANNA}
    decision = route(rules(dep), dep, OPEN_MONDAY, ALL_ONLINE, {}, pointers)
    assert pointers == {"buergerbuero": ANNA}
    assert decision.pointers["buergerbuero"] == BERND


def test_all_busy_is_queued() -> None:
    """Open, staff online, everyone at the limit: queued, nobody invited."""
    dep = team("broadcast", max_cases=2)
    load = {ANNA: 2, BERND: 2, CLARA: 5}
    decision = route(rules(dep), dep, OPEN_MONDAY, ALL_ONLINE, load)
    assert (decision.kind, decision.reason, decision.invite) == (
        "queued",
        "all_busy",
        (),
    )
    assert decision.department == "buergerbuero"


def test_closed_is_offline_with_the_next_opening() -> None:
    """Closed: offline, reason closed, the status says when it opens."""
    dep = team("broadcast")
    decision = route(rules(dep), dep, CLOSED_MONDAY, ALL_ONLINE, {})
    assert (decision.kind, decision.reason, decision.invite) == (
        "offline",
        "closed",
        (),
    )
    assert decision.status.next_opening == local(2026, 11, 24, 8, 0)


def test_open_but_nobody_online_is_offline() -> None:
    """Live hours but all staff away: offline (nobody_online), not an endless queue."""
    dep = team("broadcast")
    away = {m: "unavailable" for m in TEAM}
    decision = route(rules(dep), dep, OPEN_MONDAY, away, {})
    assert (decision.kind, decision.reason) == ("offline", "nobody_online")


def test_closed_department_falls_back_to_a_live_one() -> None:
    """Bauen is closed on Monday afternoon; its fallback Bürgerbüro takes the case."""
    bauen = department(
        "bauen", hours={"mi": ["08:00-09:30"]}, staff=(BERND,), fallback="buergerbuero"
    )
    buero = department("buergerbuero", hours={"mo": ["08:00-18:00"]}, staff=(ANNA,))
    decision = route(
        rules(bauen, buero), bauen, local(2026, 11, 23, 15, 0), ALL_ONLINE, {}
    )
    assert (decision.kind, decision.department, decision.invite) == (
        "live",
        "buergerbuero",
        (ANNA,),
    )
    assert decision.via_fallback


def test_busy_department_falls_back_before_queueing() -> None:
    """Bauen open but Bernd full: the free fallback takes the case live."""
    bauen = department(
        "bauen",
        hours={"mo": ["08:00-12:00"]},
        staff=(BERND,),
        fallback="buergerbuero",
        max_cases_per_staff=1,
    )
    buero = department("buergerbuero", hours={"mo": ["08:00-12:00"]}, staff=(ANNA,))
    decision = route(rules(bauen, buero), bauen, OPEN_MONDAY, ALL_ONLINE, {BERND: 1})
    assert (decision.kind, decision.department) == ("live", "buergerbuero")


def test_queued_in_the_requested_department_when_the_fallback_is_full_too() -> None:
    """Both full: the citizen queues where they asked, not at the fallback."""
    bauen = department(
        "bauen",
        hours={"mo": ["08:00-12:00"]},
        staff=(BERND,),
        fallback="buergerbuero",
        max_cases_per_staff=1,
    )
    buero = department(
        "buergerbuero",
        hours={"mo": ["08:00-12:00"]},
        staff=(ANNA,),
        max_cases_per_staff=1,
    )
    decision = route(
        rules(bauen, buero), bauen, OPEN_MONDAY, ALL_ONLINE, {BERND: 1, ANNA: 1}
    )
    assert (decision.kind, decision.department, decision.via_fallback) == (
        "queued",
        "bauen",
        False,
    )


def test_fallback_cycles_do_not_loop_at_runtime() -> None:
    """Even unchecked rules with a → b → a end the chain after each department once."""
    a = department("a", hours={}, staff=(ANNA,), fallback="b")
    b = department("b", hours={}, staff=(BERND,), fallback="a")
    rule = RoutingRules(departments=(a, b))
    assert [d.id for d in fallback_chain(rule, a)] == ["a", "b"]
    assert route(rule, a, OPEN_MONDAY, ALL_ONLINE, {}).kind == "offline"


# --- queue estimate -------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "minutes", "slots", "expected"),
    [
        (1, 10, 1, 10),  # next in line, one slot: one case length
        (3, 10, 1, 30),  # three ahead of the slot
        (1, 10, 2, 5),  # two slots free up twice as often
        (3, 5, 2, 8),  # 7.5 minutes rounded up
        (1, 1, 10, 1),  # never less than a minute
        (4, 10, 0, 40),  # no slot known: count as one
    ],
)
def test_estimated_wait(position: int, minutes: int, slots: int, expected: int) -> None:
    """Wait = position × average case time ÷ parallel slots, whole minutes up."""
    wait = estimate_wait(position, timedelta(minutes=minutes), slots)
    assert wait == timedelta(minutes=expected)


def test_estimated_wait_counts_down_as_the_queue_moves() -> None:
    """Moving up from position 4 to 1 never makes the estimate grow."""
    waits = [estimate_wait(p, timedelta(minutes=8), 3) for p in (4, 3, 2, 1)]
    assert waits == sorted(waits, reverse=True)
    assert waits[0] > waits[-1]


def test_queue_positions_start_at_one() -> None:
    """Position 0 is a caller bug, not 'no wait'."""
    with pytest.raises(ValueError):
        estimate_wait(0, timedelta(minutes=10), 1)


def test_serving_slots_count_online_staff_times_their_limit() -> None:
    """Two online people with a limit of 3 handle six cases at once."""
    presence = {ANNA: "online", BERND: "online", CLARA: "offline"}
    assert serving_slots(team("broadcast", max_cases=3), presence) == 6
