"""Who is on call at an instant: the WALL answers of SCHEDULES.md 5.6, and a few more zones."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from tocsin.schedules.definition import Restriction, ScheduleDef, Weekday
from tocsin.schedules.oncall import who_is_on_call
from tocsin.schedules.shifts import SourceKind

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
WEEKDAYS = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-08T12:00Z", "Bob"),  # Sun 08:00 EDT
        ("2026-03-09T12:59Z", "Bob"),  # Mon 08:59 EDT
        ("2026-03-09T13:00Z", "Carol"),  # Mon 09:00 EDT: the handoff stays at 09:00 local
        ("2026-03-09T13:30Z", "Carol"),
        ("2026-03-09T14:00Z", "Carol"),
        ("2026-10-26T13:30Z", "Carol"),  # Mon 09:30 EDT
        ("2026-11-02T13:30Z", "Carol"),  # Mon 08:30 EST, end of the 169-hour shift
        ("2026-11-02T14:00Z", "Alice"),  # Mon 09:00 EST
    ],
)
def test_example_1_weekly_rotation_hands_off_monday_nine_local_across_dst(
    make_layer, on_call, at, expected
):
    layer = make_layer("weekly", datetime(2026, 2, 23, 9), ["Alice", "Bob", "Carol"])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == [expected]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-08T07:00Z", "Bob"),  # Sun 03:00 EDT, first instant after the gap
        ("2026-03-09T04:30Z", "Alice"),  # Mon 00:30 EDT
        ("2026-10-31T04:30Z", "Alice"),  # Sat 00:30 EDT
        ("2026-11-01T04:30Z", "Bob"),  # Sun 00:30 EDT
        ("2026-11-01T05:30Z", "Bob"),  # Sun 01:30 EDT, first 01:30
        ("2026-11-01T06:30Z", "Bob"),  # Sun 01:30 EST, second 01:30
        ("2026-11-02T04:30Z", "Bob"),  # Sun 23:30 EST, the 25-hour day
        ("2026-11-02T05:30Z", "Alice"),  # Mon 00:30 EST
    ],
)
def test_example_2_daily_rotation_hands_off_at_local_midnight_across_dst(
    make_layer, on_call, at, expected
):
    layer = make_layer("daily", datetime(2026, 3, 7, 0), ["Alice", "Bob"])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == [expected]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-08T01:00Z", "Bob"),  # Sat 20:00 EST
        ("2026-03-08T11:59Z", "Bob"),  # Sun 07:59 EDT
        ("2026-03-08T12:30Z", "Alice"),  # Sun 08:30 EDT
        ("2026-03-08T13:00Z", "Alice"),  # Sun 09:00 EDT
        ("2026-10-31T12:30Z", "Alice"),  # Sat 08:30 EDT
        ("2026-11-01T05:30Z", "Bob"),  # 01:30 EDT
        ("2026-11-01T06:30Z", "Bob"),  # 01:30 EST
        ("2026-11-01T12:30Z", "Bob"),  # 07:30 EST
        ("2026-11-01T13:00Z", "Alice"),  # 08:00 EST
    ],
)
def test_example_3_twelve_hour_rotation_keeps_eight_and_twenty_local(
    make_layer, on_call, at, expected
):
    layer = make_layer("hourly", datetime(2026, 3, 7, 8), ["Alice", "Bob"], turn_length=12)
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == [expected]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-29T00:30Z", "Bob"),  # Sun 01:30 CET
        ("2026-03-29T01:30Z", "Bob"),  # Sun 03:30 CEST
        ("2026-03-30T06:59Z", "Bob"),  # Mon 08:59 CEST
        ("2026-03-30T07:30Z", "Alice"),  # Mon 09:30 CEST
        ("2026-03-30T08:00Z", "Alice"),  # Mon 10:00 CEST
        ("2026-10-19T07:30Z", "Bob"),  # Mon 09:30 CEST
        ("2026-10-26T07:30Z", "Bob"),  # Mon 08:30 CET
        ("2026-10-26T08:00Z", "Alice"),  # Mon 09:00 CET
    ],
)
def test_example_4_weekly_rotation_in_berlin_hands_off_monday_nine_local(
    make_layer, on_call, at, expected
):
    layer = make_layer("weekly", datetime(2026, 3, 16, 9), ["Alice", "Bob"])
    schedule = ScheduleDef(BERLIN, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == [expected]


@pytest.mark.parametrize(
    ("anchor", "at", "expected"),
    [
        (datetime(2026, 3, 8, 0), "2026-03-08T05:30Z", "A"),  # 00:30 EST
        (datetime(2026, 3, 8, 0), "2026-03-08T06:30Z", "B"),  # 01:30 EST
        (datetime(2026, 3, 8, 0), "2026-03-08T07:00Z", "C"),  # 03:00 EDT
        (datetime(2026, 3, 8, 0), "2026-03-08T07:30Z", "C"),  # floor(wall hours) says A
        (datetime(2026, 3, 8, 0), "2026-03-08T08:00Z", "A"),  # 04:00 EDT
        (datetime(2026, 10, 31, 23), "2026-11-01T03:30Z", "A"),  # 23:30 EDT
        (datetime(2026, 10, 31, 23), "2026-11-01T04:30Z", "B"),  # 00:30 EDT
        (datetime(2026, 10, 31, 23), "2026-11-01T05:30Z", "C"),  # 01:30 EDT
        (datetime(2026, 10, 31, 23), "2026-11-01T06:30Z", "C"),  # 01:30 EST, same turn
        (datetime(2026, 10, 31, 23), "2026-11-01T07:00Z", "A"),  # 02:00 EST
    ],
)
def test_example_5_hourly_rotation_advances_one_participant_per_actual_handoff(
    make_layer, on_call, anchor, at, expected
):
    layer = make_layer("hourly", anchor, ["A", "B", "C"])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == [expected]


@pytest.mark.parametrize(
    ("at", "expected", "source"),
    [
        ("2026-04-07T13:30Z", "Carol", SourceKind.LAYER),  # Tue 09:30: layer 2 wins
        ("2026-04-07T14:30Z", "Dave", SourceKind.OVERRIDE),  # Tue 10:30: the override wins
        ("2026-04-07T00:30Z", "Alice", SourceKind.LAYER),  # Mon 20:30: layer 2 empty, falls
        ("2026-04-13T12:30Z", "Alice", SourceKind.LAYER),  # Mon 08:30: layer 1 not handed off
        ("2026-04-13T13:30Z", "Carol", SourceKind.LAYER),  # Mon 09:30
        ("2026-04-13T21:30Z", "Bob", SourceKind.LAYER),  # Mon 17:30
    ],
)
def test_example_8_higher_layer_wins_gaps_fall_through_and_overrides_beat_layers(
    make_layer, make_override, people, at, expected, source
):
    bottom = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Alice", "Bob"],
        start=datetime.fromisoformat("2026-04-06T13:00Z"),
        name="bottom",
    )
    top = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Carol"],
        restrictions=[Restriction(time(9), time(17), WEEKDAYS)],
        name="top",
    )
    dave = make_override(
        ["Dave"],
        datetime.fromisoformat("2026-04-07T14:00Z"),
        datetime.fromisoformat("2026-04-07T15:00Z"),
    )
    schedule = ScheduleDef(NEW_YORK, (bottom, top), (dave,))

    answer = who_is_on_call(schedule, datetime.fromisoformat(at))

    assert people.names(answer.user_ids) == [expected]
    assert answer.source is not None
    assert answer.source.kind is source


def test_it_answers_nobody_when_every_layer_is_empty(make_layer):
    layer = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Carol"],
        restrictions=[Restriction(time(9), time(17), WEEKDAYS)],
    )
    schedule = ScheduleDef(NEW_YORK, (layer,))

    answer = who_is_on_call(schedule, datetime.fromisoformat("2026-04-11T15:00Z"))  # Saturday

    assert answer.user_ids == ()
    assert answer.source is None


def test_it_puts_a_whole_group_on_call_together(make_layer, on_call):
    layer = make_layer("daily", datetime(2026, 3, 1, 9), [("Alice", "Bob"), "Carol"])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat("2026-03-01T15:00Z")) == ["Alice", "Bob"]
    assert on_call(schedule, datetime.fromisoformat("2026-03-02T15:00Z")) == ["Carol"]


def test_the_last_listed_of_overlapping_overrides_wins(make_layer, make_override, on_call):
    layer = make_layer("weekly", datetime(2026, 4, 6, 9), ["Alice"])
    whole_day = make_override(
        ["Dave"],
        datetime.fromisoformat("2026-04-07T00:00Z"),
        datetime.fromisoformat("2026-04-08T00:00Z"),
    )
    one_hour = make_override(
        ["Erin"],
        datetime.fromisoformat("2026-04-07T12:00Z"),
        datetime.fromisoformat("2026-04-07T13:00Z"),
    )
    schedule = ScheduleDef(NEW_YORK, (layer,), (whole_day, one_hour))

    assert on_call(schedule, datetime.fromisoformat("2026-04-07T11:59Z")) == ["Dave"]
    assert on_call(schedule, datetime.fromisoformat("2026-04-07T12:00Z")) == ["Erin"]
    assert on_call(schedule, datetime.fromisoformat("2026-04-07T13:00Z")) == ["Dave"]
    assert on_call(schedule, datetime.fromisoformat("2026-04-08T00:00Z")) == ["Alice"]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-01T13:59Z", None),  # before the layer starts
        ("2026-03-01T14:00Z", "Alice"),  # the layer's start is included
        ("2026-03-15T12:59Z", "Bob"),
        ("2026-03-15T13:00Z", None),  # the layer's end is not
    ],
)
def test_a_layer_is_on_call_only_between_its_start_and_end(make_layer, on_call, at, expected):
    layer = make_layer(
        "weekly",
        datetime(2026, 3, 1, 9),
        ["Alice", "Bob"],
        start=datetime.fromisoformat("2026-03-01T14:00Z"),
        end=datetime.fromisoformat("2026-03-15T13:00Z"),
    )
    schedule = ScheduleDef(NEW_YORK, (layer,))

    assert on_call(schedule, datetime.fromisoformat(at)) == ([expected] if expected else [])


def test_it_rejects_a_naive_instant(make_layer):
    schedule = ScheduleDef(NEW_YORK, (make_layer("daily", datetime(2026, 3, 1, 9), ["Alice"]),))

    with pytest.raises(ValueError, match="timezone-aware"):
        who_is_on_call(schedule, datetime(2026, 3, 2, 9))
