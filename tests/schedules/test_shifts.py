"""Shifts between two instants: per layer, merged into the final schedule, and the gaps."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from tocsin.schedules.definition import Restriction, ScheduleDef, Weekday
from tocsin.schedules.shifts import (
    Gap,
    SourceKind,
    compute_shifts,
    coverage_gaps,
    final_shifts,
    layer_shifts,
)

NEW_YORK = "America/New_York"
WEEKDAYS = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def readable(shifts, people):
    return [(s.start, s.end, ", ".join(people.names(s.user_ids))) for s in shifts]


def test_example_1_shifts_are_clipped_at_both_ends_of_the_range(make_layer, people):
    layer = make_layer("weekly", datetime(2026, 2, 23, 9), ["Alice", "Bob", "Carol"])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    shifts = final_shifts(schedule, instant("2026-03-01T00:00Z"), instant("2026-03-17T00:00Z"))

    assert readable(shifts, people) == [
        (instant("2026-03-01T00:00Z"), instant("2026-03-02T14:00Z"), "Alice"),  # clipped at A
        (instant("2026-03-02T14:00Z"), instant("2026-03-09T13:00Z"), "Bob"),
        (instant("2026-03-09T13:00Z"), instant("2026-03-16T13:00Z"), "Carol"),
        (instant("2026-03-16T13:00Z"), instant("2026-03-17T00:00Z"), "Alice"),  # cut at B
    ]


@pytest.fixture
def example_8(make_layer, make_override):
    bottom = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Alice", "Bob"],
        start=instant("2026-04-06T13:00Z"),
        name="bottom",
    )
    top = make_layer(
        "weekly",
        datetime(2026, 4, 6, 9),
        ["Carol"],
        restrictions=[Restriction(time(9), time(17), WEEKDAYS)],
        name="top",
    )
    dave = make_override(["Dave"], instant("2026-04-07T14:00Z"), instant("2026-04-07T15:00Z"))
    return ScheduleDef(NEW_YORK, (bottom, top), (dave,))


def test_example_8_final_shifts_take_the_highest_source_at_each_moment(example_8, people):
    shifts = final_shifts(example_8, instant("2026-04-06T12:00Z"), instant("2026-04-14T00:00Z"))

    day_and_night = []
    for day in (6, 7, 8, 9):
        day_and_night += [
            (f"2026-04-{day:02}T13:00Z", f"2026-04-{day:02}T21:00Z", "Carol"),
            (f"2026-04-{day:02}T21:00Z", f"2026-04-{day + 1:02}T13:00Z", "Alice"),
        ]
    day_and_night[2:3] = [
        ("2026-04-07T13:00Z", "2026-04-07T14:00Z", "Carol"),
        ("2026-04-07T14:00Z", "2026-04-07T15:00Z", "Dave"),
        ("2026-04-07T15:00Z", "2026-04-07T21:00Z", "Carol"),
    ]
    expected = [
        *day_and_night,
        ("2026-04-10T13:00Z", "2026-04-10T21:00Z", "Carol"),
        ("2026-04-10T21:00Z", "2026-04-13T13:00Z", "Alice"),  # the weekend falls through
        ("2026-04-13T13:00Z", "2026-04-13T21:00Z", "Carol"),
        ("2026-04-13T21:00Z", "2026-04-14T00:00Z", "Bob"),
    ]
    assert readable(shifts, people) == [
        (instant(start), instant(end), name) for start, end, name in expected
    ]


def test_example_8_gaps_are_where_no_layer_and_no_override_has_anyone(example_8):
    result = compute_shifts(example_8, instant("2026-04-06T12:00Z"), instant("2026-04-06T14:00Z"))

    assert result.gaps == [Gap(instant("2026-04-06T12:00Z"), instant("2026-04-06T13:00Z"))]
    assert result.final[0].start == instant("2026-04-06T13:00Z")


def test_example_8_layer_shifts_are_reported_per_layer(example_8, people):
    bottom, top = example_8.layers

    result = compute_shifts(example_8, instant("2026-04-07T12:00Z"), instant("2026-04-07T22:00Z"))

    assert readable(result.layers[bottom.id], people) == [
        (instant("2026-04-07T12:00Z"), instant("2026-04-07T22:00Z"), "Alice")
    ]
    assert readable(result.layers[top.id], people) == [
        (instant("2026-04-07T13:00Z"), instant("2026-04-07T21:00Z"), "Carol")
    ]
    assert [s.source.kind for s in result.final] == [
        SourceKind.LAYER,
        SourceKind.LAYER,
        SourceKind.OVERRIDE,
        SourceKind.LAYER,
        SourceKind.LAYER,
    ]
    assert result.layers[top.id] == layer_shifts(
        example_8, top, instant("2026-04-07T12:00Z"), instant("2026-04-07T22:00Z")
    )


def test_consecutive_turns_of_the_same_people_make_one_shift(make_layer, people):
    layer = make_layer("daily", datetime(2026, 3, 1, 9), [("Bob", "Alice"), ("Alice", "Bob")])
    schedule = ScheduleDef(NEW_YORK, (layer,))

    shifts = final_shifts(schedule, instant("2026-03-01T00:00Z"), instant("2026-03-10T00:00Z"))

    assert readable(shifts, people) == [
        (instant("2026-03-01T00:00Z"), instant("2026-03-10T00:00Z"), "Alice, Bob")
    ]
    assert shifts[0].user_ids == tuple(sorted(shifts[0].user_ids))


def test_an_override_inside_a_shift_splits_it_and_the_layer_resumes(make_layer, make_override):
    layer = make_layer("weekly", datetime(2026, 3, 2, 9), ["Alice"])
    override = make_override(["Dave"], instant("2026-03-04T00:00Z"), instant("2026-03-05T00:00Z"))
    schedule = ScheduleDef(NEW_YORK, (layer,), (override,))

    shifts = final_shifts(schedule, instant("2026-03-03T00:00Z"), instant("2026-03-06T00:00Z"))

    assert [(s.start, s.end, s.source.kind) for s in shifts] == [
        (instant("2026-03-03T00:00Z"), instant("2026-03-04T00:00Z"), SourceKind.LAYER),
        (instant("2026-03-04T00:00Z"), instant("2026-03-05T00:00Z"), SourceKind.OVERRIDE),
        (instant("2026-03-05T00:00Z"), instant("2026-03-06T00:00Z"), SourceKind.LAYER),
    ]


def test_a_schedule_with_no_layers_is_one_gap(make_override):
    schedule = ScheduleDef(NEW_YORK, ())

    gaps = coverage_gaps(schedule, instant("2026-03-03T00:00Z"), instant("2026-03-06T00:00Z"))

    assert gaps == [Gap(instant("2026-03-03T00:00Z"), instant("2026-03-06T00:00Z"))]


def test_an_empty_range_has_no_shifts_and_no_gaps(make_layer):
    schedule = ScheduleDef(NEW_YORK, (make_layer("daily", datetime(2026, 3, 1), ["Alice"]),))
    at = instant("2026-03-03T00:00Z")

    result = compute_shifts(schedule, at, at)

    assert (result.final, result.gaps) == ([], [])


def test_shifts_are_returned_in_utc_whatever_zone_the_range_is_given_in(make_layer):
    schedule = ScheduleDef(NEW_YORK, (make_layer("daily", datetime(2026, 3, 1), ["Alice"]),))

    shifts = final_shifts(
        schedule, instant("2026-03-03T00:00+05:30"), instant("2026-03-03T10:00+05:30")
    )

    assert shifts[0].start == instant("2026-03-02T18:30Z")
    assert shifts[0].start.utcoffset() is not None
    assert shifts[0].start.tzname() == "UTC"


def test_a_range_that_ends_before_it_starts_is_refused(make_layer):
    schedule = ScheduleDef(NEW_YORK, (make_layer("daily", datetime(2026, 3, 1), ["Alice"]),))

    with pytest.raises(ValueError, match="end must not be before start"):
        compute_shifts(schedule, instant("2026-03-03T00:00Z"), instant("2026-03-02T00:00Z"))
