"""The virtual citizen office's services and free starts (``video:`` in
departments.yaml, bridge/departments/video.py, GET /api/v1/services and
/api/v1/appointments/slots): hours, holidays, exceptions, cut-off, horizon,
buffers, daylight saving, and every wrong entry named."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bridge.booking import Bookings
from bridge.clock import FakeClock, use_clock
from bridge.departments.model import RoutingRules
from bridge.departments.rules import load_rules
from bridge.departments.video import VideoOffice, slots
from bridge.yamlconf import ConfigError
from tests.harness import harness

BERLIN = ZoneInfo("Europe/Berlin")
REPO = Path(__file__).resolve().parents[2]


def rules_with(tmp_path: Path, video: dict[str, Any] | None = None) -> RoutingRules:
    data = yaml.safe_load((REPO / "config/departments.yaml").read_text("utf-8"))
    office = next(d for d in data["departments"] if d["id"] == "buergerbuero")
    if video is not None:
        office["video"] = video
    path = tmp_path / "departments.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_rules(path)


def office_of(rules: RoutingRules) -> VideoOffice:
    department = rules.department("buergerbuero")
    assert department is not None and department.video is not None
    return department.video


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


#: Free starts on Tuesday 8 Dec for the two services (30 minutes together).
TUESDAY_HALF_HOUR = {
    "department": "buergerbuero",
    "services": "personalausweis,meldebescheinigung",
    "from": "2026-12-08",
    "days": "1",
}


def starts(found: list[Any]) -> list[str]:
    return [s.start.astimezone(BERLIN).strftime("%m-%d %H:%M") for s in found]


def test_starts_fit_the_hours_and_the_cut_off(tmp_path: Path) -> None:
    rules = rules_with(tmp_path)
    office = office_of(rules)  # Tuesday 14-16, Thursday 14-18; slots of 15 min
    # Monday 7 Dec 2026, 09:00: Tuesday's afternoon is open for 20 minutes.
    found = slots(office, rules, 20, date(2026, 12, 8), 1, local(2026, 12, 7, 9))
    assert starts(found) == [
        "12-08 14:00",
        "12-08 14:15",
        "12-08 14:30",
        "12-08 14:45",
        "12-08 15:00",
        "12-08 15:15",
        "12-08 15:30",  # 15:45 + 20 min would end after 16:00
    ]
    assert all(s.staff_count == 1 for s in found)
    # On Tuesday at 14:10 the cut-off (60 min) leaves 15:15 and later.
    found = slots(office, rules, 20, date(2026, 12, 8), 1, local(2026, 12, 8, 14, 10))
    assert starts(found) == ["12-08 15:15", "12-08 15:30"]


def test_holidays_exceptions_and_horizon_close_days(tmp_path: Path) -> None:
    rules = rules_with(
        tmp_path,
        {
            "hours": {"mo-fr": ["10:00-11:00"]},
            "exceptions": [{"date": "2026-12-10", "closed": True}],
            "horizon_days": 10,
            "services": [{"id": "a", "name": "A", "duration_minutes": 60}],
        },
    )
    office = office_of(rules)
    found = slots(office, rules, 60, date(2026, 12, 21), 30, local(2026, 12, 20, 9))
    # 25 and 26 Dec are public holidays; the horizon ends on 30 Dec.
    assert starts(found) == [
        "12-21 10:00",
        "12-22 10:00",
        "12-23 10:00",
        "12-24 10:00",
        "12-28 10:00",
        "12-29 10:00",
        "12-30 10:00",
    ]
    found = slots(office, rules, 60, date(2026, 12, 9), 3, local(2026, 12, 8, 9))
    assert starts(found) == ["12-09 10:00", "12-11 10:00"]  # the 10th closed


def test_booked_time_and_its_buffer_take_a_person_out(tmp_path: Path) -> None:
    rules = rules_with(
        tmp_path,
        {
            "hours": {"di": ["14:00-16:00"]},
            "staff": [
                "@anna.schmidt:buergerchat.localhost",
            ],
            "buffer_minutes": 10,
            "services": [{"id": "a", "name": "A", "duration_minutes": 20}],
        },
    )
    office = office_of(rules)
    anna = "@anna.schmidt:buergerchat.localhost"
    busy = {anna: [(local(2026, 12, 8, 14, 25), local(2026, 12, 8, 14, 45))]}
    found = slots(office, rules, 20, date(2026, 12, 8), 1, local(2026, 12, 7), busy)
    # Without the 10 minutes between, 14:00 (ends 14:20) and 14:45 would fit.
    assert starts(found) == ["12-08 15:00", "12-08 15:15", "12-08 15:30"]


def test_the_clock_change_day_keeps_wall_clock_starts(tmp_path: Path) -> None:
    rules = rules_with(
        tmp_path,
        {
            "hours": {"so": ["01:00-04:00"]},
            "slot_minutes": 60,
            "services": [{"id": "a", "name": "A", "duration_minutes": 60}],
        },
    )
    office = office_of(rules)
    # 28 Mar 2027: 02:00 does not exist in Berlin (clocks go to 03:00).
    found = slots(office, rules, 60, date(2027, 3, 28), 1, local(2027, 3, 27))
    assert starts(found) == ["03-28 01:00", "03-28 03:00"]
    assert (
        found[0].start.astimezone(BERLIN).utcoffset()
        != found[1].start.astimezone(BERLIN).utcoffset()
    )


@pytest.mark.parametrize(
    ("video", "said"),
    [
        ({"hours": {"di": ["14:00-16:00"]}}, "video.services"),
        (
            {
                "hours": {"di": ["14:00-16:00"]},
                "staff": ["@nobody:buergerchat.localhost"],
                "services": [{"id": "a", "name": "A", "duration_minutes": 20}],
            },
            "not among the department's staff",
        ),
        (
            {
                "hours": {"di": ["14:00-16:00"]},
                "services": [
                    {"id": "a", "name": "A", "duration_minutes": 20},
                    {"id": "a", "name": "B", "duration_minutes": 7},
                ],
            },
            "used twice",
        ),
        (
            {
                "hours": {"di": ["14:00-16:00"]},
                "services": [{"id": "a", "name": "A", "duration_minutes": 7}],
            },
            "multiple of 5",
        ),
        (
            {
                "hours": {"dienstag": ["14:00-16:00"]},
                "slot_minutes": 15,
                "services": [{"id": "a", "name": "A", "duration_minutes": 20}],
                "colour": "blue",
            },
            "unknown key",
        ),
    ],
)
def test_wrong_entries_are_named(
    tmp_path: Path, video: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConfigError) as e:
        rules_with(tmp_path, video)
    assert said in str(e.value), str(e.value)
    assert "buergerbuero" in str(e.value) or "departments[0]" in str(e.value)


async def test_the_public_list_and_free_starts(tmp_path: Path) -> None:
    with use_clock(FakeClock(local(2026, 12, 7, 9))):
        async with harness(tmp_path) as h, h.api() as client:
            listed = await (await client.get("/api/v1/services")).json()
            services = {(s["department"], s["id"]): s for s in listed["services"]}
            ausweis = services[("buergerbuero", "personalausweis")]
            assert (
                ausweis["duration_minutes"] == 20 and "Passfoto" in ausweis["prepare"]
            )
            assert ("standesamt", "geburtsurkunde") in services
            assert not any(d == "bauen" for d, _ in services)

            answer = await client.get(
                "/api/v1/appointments/slots", params=TUESDAY_HALF_HOUR
            )
            body = await answer.json()
            assert answer.status == 200, body
            first = body["slots"][0]
            assert first == {
                "start": "2026-12-08T14:00:00+01:00",
                "end": "2026-12-08T14:30:00+01:00",
                "staff_count": 1,
            }
            assert body["slots"][-1]["start"] == "2026-12-08T15:30:00+01:00"

            # A booking takes its start and its neighbours within the buffer.
            booked = await Bookings(h.store.engine).book(
                department="buergerbuero",
                services=["personalausweis", "meldebescheinigung"],
                start=local(2026, 12, 8, 14, 30),
                end=local(2026, 12, 8, 15),
                buffer_minutes=5,
                staff=("@anna.schmidt:buergerchat.localhost",),
                client_id="b1",
            )
            assert booked is not None
            again = await client.get(
                "/api/v1/appointments/slots", params=TUESDAY_HALF_HOUR
            )
            left = [s["start"][11:16] for s in (await again.json())["slots"]]
            # 30 minutes plus 5 of buffer: 14:00 would run into 14:30; 15:00
            # starts inside its buffer; 15:15 and later are free.
            assert left == ["15:15", "15:30"], left

            for params, field in [
                ({"department": "bauen", "services": "x"}, "department"),
                ({"department": "nirgends", "services": "x"}, "department"),
                ({"department": "buergerbuero"}, "services"),
                ({"department": "buergerbuero", "services": "geburt"}, "services"),
                (
                    {
                        "department": "buergerbuero",
                        "services": "meldebescheinigung",
                        "from": "morgen",
                    },
                    "from",
                ),
                (
                    {
                        "department": "buergerbuero",
                        "services": "meldebescheinigung",
                        "days": "99",
                    },
                    "days",
                ),
            ]:
                refused = await client.get("/api/v1/appointments/slots", params=params)
                error = await refused.json()
                assert refused.status == 400 and error["field"] == field, error
                assert error["errcode"] == "BC_INVALID_FIELD"
