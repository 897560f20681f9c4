"""Restriction windows on the schedule's wall clock: SCHEDULES.md example 7 and its relatives."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tocsin.schedules.definition import Restriction, ScheduleDef, Weekday
from tocsin.schedules.restrictions import is_within_restrictions, restriction_windows
from tocsin.schedules.shifts import layer_shifts

NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SATURDAY_NIGHT = Restriction(time(22), time(6), (Weekday.SAT,))
SUNDAY_SMALL_HOURS = Restriction(time(1, 30), time(2, 30), (Weekday.SUN,))
WEEKDAYS_NINE_TO_FIVE = Restriction(
    time(9), time(17), (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)
)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("restriction", "zone", "search_from", "window", "length"),
    [
        # Sat 22:00 EST -> Sun 06:00 EDT across spring-forward: 7 hours.
        (SATURDAY_NIGHT, NEW_YORK, "2026-03-07", ("2026-03-08T03:00Z", "2026-03-08T10:00Z"), 7),
        # Sat 22:00 EDT -> Sun 06:00 EST across fall-back: 9 hours.
        (SATURDAY_NIGHT, NEW_YORK, "2026-10-31", ("2026-11-01T02:00Z", "2026-11-01T11:00Z"), 9),
        # Starts at the first 01:30 (EDT), ends at the last 02:30, which exists once (EST).
        (
            SUNDAY_SMALL_HOURS,
            NEW_YORK,
            "2026-11-01",
            ("2026-11-01T05:30Z", "2026-11-01T07:30Z"),
            2,
        ),
        # Lord Howe falls back 02:00 -> 01:30: a window ending at 01:45 ends at the second
        # 01:45 (+10:30), 4 h 15 min after 22:00 (+11).
        (
            Restriction(time(22), time(1, 45), (Weekday.SAT,)),
            LORD_HOWE,
            "2026-04-04",
            ("2026-04-04T11:00Z", "2026-04-04T15:15Z"),
            4.25,
        ),
        # Lord Howe springs forward 02:00 -> 02:30: a window starting at 02:15 starts at
        # 02:30 (+11), 30 minutes short.
        (
            Restriction(time(2, 15), time(4, 15), (Weekday.SUN,)),
            LORD_HOWE,
            "2026-10-04",
            ("2026-10-03T15:30Z", "2026-10-03T17:15Z"),
            1.75,
        ),
    ],
)
def test_example_7_windows_start_at_first_occurrence_and_end_at_last(
    restriction, zone, search_from, window, length
):
    start = datetime.fromisoformat(search_from).replace(tzinfo=zone) - timedelta(days=1)

    windows = restriction_windows([restriction], zone, start, start + timedelta(days=3))

    assert windows == [(instant(window[0]), instant(window[1]))]
    assert windows[0][1] - windows[0][0] == timedelta(hours=length)


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ("2026-03-08T02:59Z", False),  # Sat 21:59 EST
        ("2026-03-08T03:00Z", True),  # Sat 22:00 EST: starts included
        ("2026-03-08T07:00Z", True),  # 03:00 EDT, straight after the gap
        ("2026-03-08T09:59Z", True),  # Sun 05:59 EDT
        ("2026-03-08T10:00Z", False),  # Sun 06:00 EDT: ends excluded
        ("2026-03-09T03:00Z", False),  # Sun 23:00 EDT: the window is Saturday's only
    ],
)
def test_example_7_overnight_rule_is_active_until_six_local(at, inside):
    assert is_within_restrictions([SATURDAY_NIGHT], NEW_YORK, instant(at)) is inside


def test_restrictions_mask_a_rotation_while_turns_keep_counting(make_layer, people):
    # SCHEDULES.md 5.2: a weekly rotation restricted to Mon-Fri 09-17 gives the first person
    # all of week 1's business hours and the second all of week 2's.
    layer = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Alice", "Bob"],
        restrictions=[WEEKDAYS_NINE_TO_FIVE],
    )
    schedule = ScheduleDef("America/New_York", (layer,))

    shifts = layer_shifts(
        schedule, layer, instant("2026-04-06T00:00Z"), instant("2026-04-20T00:00Z")
    )

    business_days = [6, 7, 8, 9, 10, 13, 14, 15, 16, 17]
    assert [(s.start, s.end, people.names(s.user_ids)) for s in shifts] == [
        (
            instant(f"2026-04-{day:02}T13:00Z"),
            instant(f"2026-04-{day:02}T21:00Z"),
            ["Alice"] if day < 13 else ["Bob"],
        )
        for day in business_days
    ]


def test_a_window_split_by_a_handoff_gives_each_side_its_part(make_layer, people):
    layer = make_layer(
        "daily",
        datetime(2026, 4, 6, 12),
        ["Alice", "Bob"],
        restrictions=[Restriction(time(9), time(17))],
    )
    schedule = ScheduleDef("America/New_York", (layer,))

    shifts = layer_shifts(
        schedule, layer, instant("2026-04-07T00:00Z"), instant("2026-04-08T00:00Z")
    )

    assert [(s.start, s.end, people.names(s.user_ids)) for s in shifts] == [
        (instant("2026-04-07T13:00Z"), instant("2026-04-07T16:00Z"), ["Alice"]),
        (instant("2026-04-07T16:00Z"), instant("2026-04-07T21:00Z"), ["Bob"]),
    ]


def test_windows_that_touch_across_midnight_make_one_shift(make_layer, people):
    layer = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Alice"],
        restrictions=[
            Restriction(time(18), time(0), (Weekday.FRI,)),
            Restriction(time(0), time(8), (Weekday.SAT,)),
        ],
    )
    schedule = ScheduleDef("America/New_York", (layer,))

    shifts = layer_shifts(
        schedule, layer, instant("2026-04-10T00:00Z"), instant("2026-04-12T00:00Z")
    )

    assert [(s.start, s.end) for s in shifts] == [
        (instant("2026-04-10T22:00Z"), instant("2026-04-11T12:00Z"))
    ]
