"""Schedule definitions that make no sense are refused, naming the field at fault."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, time

import pytest

from tocsin.errors import InvalidInput
from tocsin.schedules.definition import Restriction, ScheduleDef, Weekday
from tocsin.schedules.validation import (
    InvalidSchedule,
    load_zone,
    validate_restrictions,
    validate_schedule,
)

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def schedule(make_layer, make_override) -> ScheduleDef:
    layer = make_layer(
        "weekly",
        datetime(2026, 3, 2, 9),
        ["Alice", ("Bob", "Carol")],
        restrictions=[Restriction(time(9), time(17), (Weekday.MON,))],
    )
    override = make_override(["Dave"], START, datetime(2026, 3, 2, tzinfo=UTC))
    return ScheduleDef("America/New_York", (layer,), (override,))


def with_layer(schedule: ScheduleDef, **changes: object) -> ScheduleDef:
    return dataclasses.replace(
        schedule, layers=(dataclasses.replace(schedule.layers[0], **changes),)
    )


def with_override(schedule: ScheduleDef, **changes: object) -> ScheduleDef:
    override = dataclasses.replace(schedule.overrides[0], **changes)
    return dataclasses.replace(schedule, overrides=(override,))


def test_a_sensible_schedule_passes(schedule):
    validate_schedule(schedule)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda s: dataclasses.replace(s, time_zone="Mars/Olympus"), "time_zone", "unknown"),
        (lambda s: dataclasses.replace(s, time_zone=""), "time_zone", "unknown"),
        (lambda s: dataclasses.replace(s, time_zone="/etc/passwd"), "time_zone", "unknown"),
        (lambda s: with_layer(s, end=s.layers[0].start), "layers[0].end", "after start"),
        (
            lambda s: with_layer(s, end=datetime(2024, 2, 1, tzinfo=UTC)),
            "layers[0].end",
            "after start",
        ),
        (lambda s: with_layer(s, participants=()), "layers[0].participants", "at least one"),
        (
            lambda s: with_layer(s, participants=((uuid.uuid4(),), ())),
            "layers[0].participants[1]",
            "at least one user",
        ),
        (lambda s: with_layer(s, turn_length=0), "layers[0].turn_length", "at least 1"),
        (
            lambda s: with_layer(s, handoff=datetime(2026, 3, 2, 9, tzinfo=UTC)),
            "layers[0].handoff",
            "without a zone",
        ),
        (
            lambda s: with_layer(s, start=datetime(2026, 3, 1)),
            "layers[0].start",
            "timezone-aware",
        ),
        (
            lambda s: with_layer(s, restrictions=(Restriction(time(9), time(9)),)),
            "layers[0].restrictions[0].end",
            "differ from start",
        ),
        (
            lambda s: with_layer(s, restrictions=(Restriction(time(9), time(17), ()),)),
            "layers[0].restrictions[0].days",
            "must name a day",
        ),
        (
            lambda s: dataclasses.replace(s, layers=(s.layers[0], s.layers[0])),
            "layers[1].id",
            "same id",
        ),
        (lambda s: with_override(s, end=START), "overrides[0].end", "after start"),
        (lambda s: with_override(s, user_ids=()), "overrides[0].user_ids", "at least one"),
    ],
)
def test_it_refuses_a_schedule_that_makes_no_sense(schedule, change, field, message):
    with pytest.raises(InvalidSchedule, match=message) as caught:
        validate_schedule(change(schedule))

    assert caught.value.field == field


@pytest.mark.parametrize(
    ("restrictions", "at_fault"),
    [
        # Same days, overlapping hours.
        ([Restriction(time(9), time(17)), Restriction(time(16), time(18))], "[1]"),
        # An overnight window runs into the next morning's window.
        (
            [
                Restriction(time(22), time(6), (Weekday.MON,)),
                Restriction(time(5), time(9), (Weekday.TUE,)),
            ],
            "[1]",
        ),
        # Sunday night runs into Monday morning, across the end of the week.
        (
            [
                Restriction(time(8), time(10), (Weekday.MON,)),
                Restriction(time(20), time(9), (Weekday.SUN,)),
            ],
            "[1]",
        ),
        # One window inside another.
        ([Restriction(time(0), time(23)), Restriction(time(12), time(13), (Weekday.WED,))], "[1]"),
    ],
)
def test_it_refuses_windows_that_overlap(restrictions, at_fault):
    with pytest.raises(InvalidSchedule, match="overlaps") as caught:
        validate_restrictions(restrictions)

    assert caught.value.field == f"restrictions{at_fault}"


@pytest.mark.parametrize(
    "restrictions",
    [
        [Restriction(time(9), time(17)), Restriction(time(17), time(9))],  # touching, all day
        [
            Restriction(time(22), time(6), (Weekday.MON,)),
            Restriction(time(6), time(9), (Weekday.TUE,)),
        ],
        [
            Restriction(time(9), time(17), (Weekday.MON, Weekday.MON)),  # repeated day
            Restriction(time(9), time(17), (Weekday.TUE,)),
        ],
    ],
)
def test_it_accepts_windows_that_only_touch(restrictions):
    validate_restrictions(restrictions)


def test_the_error_is_a_value_error_and_an_invalid_input():
    with pytest.raises(InvalidSchedule) as caught:
        load_zone("Nowhere/Special")

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.status_code == 422
    assert caught.value.detail == "time_zone: unknown time zone 'Nowhere/Special'"
