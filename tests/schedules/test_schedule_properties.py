"""Properties that hold for any valid schedule, checked on generated ones around DST changes."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.schedules.definition import (
    LayerDef,
    OverrideDef,
    Restriction,
    Rotation,
    ScheduleDef,
    Weekday,
)
from tocsin.schedules.oncall import who_is_on_call
from tocsin.schedules.rotation import turn_at, turn_length
from tocsin.schedules.shifts import Gap, Shift, ShiftsResult, compute_shifts
from tocsin.schedules.validation import InvalidSchedule, validate_restrictions, validate_schedule
from tocsin.schedules.wallclock import to_instant

QUARTER = timedelta(minutes=15)
ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Antarctica/Troll",
]
# The 2026 clock changes of those zones: ranges start near them half the time.
CHANGES = [
    datetime.fromisoformat(text)
    for text in (
        "2026-03-08T07:00Z",
        "2026-11-01T06:00Z",
        "2026-03-29T01:00Z",
        "2026-10-25T01:00Z",
        "2026-04-04T15:00Z",
        "2026-10-03T15:30Z",
    )
]
USERS = [uuid.UUID(int=number) for number in range(1, 6)]
PROPERTIES = settings(max_examples=100, deadline=None)

instants = st.one_of(
    st.builds(
        lambda change, quarters: change + quarters * QUARTER,
        st.sampled_from(CHANGES),
        st.integers(-4 * 24 * 4, 4 * 24 * 4),
    ),
    st.builds(
        lambda seconds: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds),
        st.integers(0, 365 * 86_400),
    ),
)
local_quarters = st.builds(
    lambda quarters: datetime(2025, 9, 1) + quarters * QUARTER,
    st.integers(0, 600 * 96),
)
clock_times = st.builds(lambda quarters: time(quarters // 4, quarters % 4 * 15), st.integers(0, 95))


@st.composite
def restriction_sets(draw: st.DrawFn) -> tuple[Restriction, ...]:
    """Up to three windows, keeping each only if it overlaps none kept before."""
    kept: list[Restriction] = []
    for _ in range(draw(st.integers(0, 3))):
        start, end = draw(clock_times), draw(clock_times)
        days = draw(st.none() | st.lists(st.sampled_from(Weekday), min_size=1, unique=True))
        candidate = Restriction(start, end, None if days is None else tuple(days))
        try:
            validate_restrictions([*kept, candidate])
        except InvalidSchedule:
            continue
        kept.append(candidate)
    return tuple(kept)


@st.composite
def layers(draw: st.DrawFn, number: int) -> LayerDef:
    rotation = draw(st.sampled_from(Rotation))
    longest = {Rotation.HOURLY: 12, Rotation.DAILY: 3, Rotation.WEEKLY: 2}[rotation]
    start = draw(instants) - timedelta(days=draw(st.integers(0, 20)))
    end = draw(st.none() | st.integers(1, 30 * 96).map(lambda q: start + q * QUARTER))
    return LayerDef(
        id=uuid.UUID(int=1000 + number),
        name=f"layer {number}",
        start=start,
        end=end,
        rotation=rotation,
        turn_length=draw(st.integers(1, longest)),
        handoff=draw(local_quarters),
        participants=tuple(
            draw(
                st.lists(
                    st.lists(st.sampled_from(USERS), min_size=1, max_size=2).map(tuple),
                    min_size=1,
                    max_size=4,
                )
            )
        ),
        restrictions=draw(restriction_sets()),
    )


@st.composite
def overrides(draw: st.DrawFn, number: int) -> OverrideDef:
    start = draw(instants)
    return OverrideDef(
        id=uuid.UUID(int=2000 + number),
        user_ids=tuple(draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=2))),
        start=start,
        end=start + draw(st.integers(1, 3 * 96)) * QUARTER,
    )


@st.composite
def schedules(draw: st.DrawFn) -> ScheduleDef:
    layer_count = draw(st.integers(1, 3))
    override_count = draw(st.integers(0, 4))
    schedule = ScheduleDef(
        time_zone=draw(st.sampled_from(ZONES)),
        layers=tuple(draw(layers(number)) for number in range(layer_count)),
        overrides=tuple(draw(overrides(number)) for number in range(override_count)),
    )
    validate_schedule(schedule)
    return schedule


@st.composite
def ranges(draw: st.DrawFn, pieces: int = 1) -> list[datetime]:
    """`pieces` + 1 ordered instants, a few days apart at most."""
    points = [draw(instants)]
    for _ in range(pieces):
        points.append(points[-1] + timedelta(seconds=draw(st.integers(0, 5 * 86_400))))
    return points


def covered(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def assert_well_formed(shifts: list[Shift], start: datetime, end: datetime) -> None:
    for shift in shifts:
        assert start <= shift.start < shift.end <= end
        assert shift.start.tzinfo is UTC and shift.end.tzinfo is UTC
        assert shift.user_ids and list(shift.user_ids) == sorted(set(shift.user_ids))
    for before, after in itertools.pairwise(shifts):
        assert before.end <= after.start
        touching_twins = before.end == after.start and (before.user_ids, before.source) == (
            after.user_ids,
            after.source,
        )
        assert not touching_twins, "neighbours with the same users should have been merged"


@PROPERTIES
@given(schedule=schedules(), bounds=ranges())
def test_shifts_stay_in_range_in_order_without_overlap(schedule, bounds):
    start, end = bounds

    result = compute_shifts(schedule, start, end)

    assert_well_formed(result.final, start, end)
    for layer_shifts in result.layers.values():
        assert_well_formed(layer_shifts, start, end)


@PROPERTIES
@given(schedule=schedules(), bounds=ranges())
def test_final_shifts_and_gaps_tile_the_range_exactly(schedule, bounds):
    start, end = bounds

    result = compute_shifts(schedule, start, end)

    pieces = sorted(
        [(s.start, s.end) for s in result.final] + [(g.start, g.end) for g in result.gaps]
    )
    cursor = start
    for piece_start, piece_end in pieces:
        assert piece_start == cursor
        assert piece_start < piece_end
        cursor = piece_end
    assert cursor == end
    for before, after in zip(result.gaps, result.gaps[1:], strict=False):
        assert before.end < after.start


@PROPERTIES
@given(schedule=schedules(), bounds=ranges())
def test_final_shifts_cover_exactly_what_layers_and_overrides_cover(schedule, bounds):
    start, end = bounds

    result = compute_shifts(schedule, start, end)

    sources = [(s.start, s.end) for shifts in result.layers.values() for s in shifts]
    # An empty range covers nothing, even where an override spans it.
    sources += [
        (max(o.start, start), min(o.end, end))
        for o in schedule.overrides
        if max(o.start, start) < min(o.end, end)
    ]
    assert covered([(s.start, s.end) for s in result.final]) == covered(sources)


@PROPERTIES
@given(schedule=schedules(), bounds=ranges(), data=st.data())
def test_who_is_on_call_agrees_with_the_final_shift_containing_the_instant(schedule, bounds, data):
    start, end = bounds
    result = compute_shifts(schedule, start, end)
    probes = [s.start for s in result.final[:20]] + [g.start for g in result.gaps[:5]]
    if start < end:
        offset = data.draw(st.integers(0, int((end - start).total_seconds()) - 1))
        probes.append(start + timedelta(seconds=offset))

    for at in probes:
        answer = who_is_on_call(schedule, at)
        containing = [s for s in result.final if s.start <= at < s.end]
        if containing:
            (shift,) = containing
            assert (answer.user_ids, answer.source) == (shift.user_ids, shift.source)
        else:
            assert (answer.user_ids, answer.source) == ((), None)


@PROPERTIES
@given(schedule=schedules(), bounds=ranges(), data=st.data())
def test_the_highest_source_with_someone_on_call_wins(schedule, bounds, data):
    start, end = bounds
    if start == end:
        return
    result = compute_shifts(schedule, start, end)
    at = start + timedelta(
        seconds=data.draw(st.integers(0, int((end - start).total_seconds()) - 1))
    )

    active = [o for o in schedule.overrides if o.start <= at < o.end]
    answer = who_is_on_call(schedule, at)

    if active:
        assert answer.source is not None and answer.source.id == active[-1].id
        return
    for layer in reversed(schedule.layers):
        if any(s.start <= at < s.end for s in result.layers[layer.id]):
            assert answer.source is not None and answer.source.id == layer.id
            return
    assert answer.source is None


def joined(first: list, second: list) -> list:
    """Concatenate two consecutive lists of shifts or gaps, merging a pair that meets."""
    if not first or not second:
        return first + second
    last, head = first[-1], second[0]
    if last.end == head.start:
        if isinstance(last, Gap):
            return [*first[:-1], Gap(last.start, head.end), *second[1:]]
        if (last.user_ids, last.source) == (head.user_ids, head.source):
            return [
                *first[:-1],
                Shift(last.start, head.end, head.user_ids, head.source),
                *second[1:],
            ]
    return first + second


@PROPERTIES
@given(schedule=schedules(), bounds=ranges(pieces=2))
def test_a_range_computed_in_two_parts_joins_into_the_whole(schedule, bounds):
    start, middle, end = bounds

    whole = compute_shifts(schedule, start, end)
    first = compute_shifts(schedule, start, middle)
    second = compute_shifts(schedule, middle, end)

    assert whole == ShiftsResult(
        final=joined(first.final, second.final),
        layers={
            layer_id: joined(first.layers[layer_id], second.layers[layer_id])
            for layer_id in whole.layers
        },
        gaps=joined(first.gaps, second.gaps),
    )


@PROPERTIES
@given(
    zone_name=st.sampled_from(ZONES),
    rotation=st.sampled_from(Rotation),
    length=st.integers(1, 3),
    at=instants,
    distance=st.integers(-2000, 2000),
)
def test_turn_numbers_match_a_walk_over_every_handoff(zone_name, rotation, length, at, distance):
    zone = ZoneInfo(zone_name)
    layer = LayerDef(
        id=uuid.UUID(int=1),
        name="walked",
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=None,
        rotation=rotation,
        turn_length=length,
        handoff=datetime(2026, 6, 1),
        participants=((USERS[0],), (USERS[1],), (USERS[2],)),
    )
    step = turn_length(layer)
    # Anchor the rotation `distance` handoffs away from `at`, on the hour.
    near = at.astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    layer = dataclasses.replace(layer, handoff=near - distance * step)

    turn = turn_at(layer, zone, at)

    number, turn_start, turn_end = walk(layer, zone, step, at)
    assert (turn.number, turn.start, turn.end) == (number, turn_start, turn_end)
    assert turn.participant_index == number % 3


def walk(layer: LayerDef, zone: ZoneInfo, step: timedelta, at: datetime):
    """Every handoff from the anchor to `at`, one at a time, counting distinct instants."""

    def handoff(index: int) -> datetime:
        return to_instant(layer.handoff + index * step, zone)

    number, index = 0, 0
    current = handoff(0)
    while current > at:
        index -= 1
        earlier = handoff(index)
        if earlier != current:
            number -= 1
        current = earlier
    following = handoff(index + 1)
    while following <= at or following == current:
        if following != current:
            number += 1
            current = following
        index += 1
        following = handoff(index + 1)
    return number, current, following
