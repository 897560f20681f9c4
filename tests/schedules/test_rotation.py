"""A layer's turns: the WALL handoff tables of SCHEDULES.md 5.6, more zones, and counting far
from the anchor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tocsin.schedules.definition import LayerDef
from tocsin.schedules.rotation import turn_at, turns_between
from tocsin.schedules.wallclock import to_local

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def holder(layer: LayerDef, participant_index: int, people) -> str:
    (name,) = people.names(layer.participants[participant_index])
    return name


def assert_handoff(layer, zone, people, handoff, expected, length):
    """The turn starting at `handoff` belongs to `expected` and lasts `length` (None: unchecked)."""
    turn = turn_at(layer, zone, datetime.fromisoformat(handoff))

    assert turn.start == datetime.fromisoformat(handoff)
    assert holder(layer, turn.participant_index, people) == expected
    if length is not None:
        assert turn.end - turn.start == length


@pytest.mark.parametrize(
    ("handoff", "expected", "length"),
    [
        ("2026-02-23T14:00Z", "Alice", hours(168)),  # Mon 09:00 EST
        ("2026-03-02T14:00Z", "Bob", hours(167)),  # spans spring-forward
        ("2026-03-09T13:00Z", "Carol", hours(168)),  # Mon 09:00 EDT
        ("2026-03-16T13:00Z", "Alice", None),
        ("2026-10-19T13:00Z", "Bob", hours(168)),
        ("2026-10-26T13:00Z", "Carol", hours(169)),  # spans fall-back
        ("2026-11-02T14:00Z", "Alice", None),  # Mon 09:00 EST
    ],
)
def test_example_1_weekly_handoffs_keep_monday_nine_local(
    make_layer, people, handoff, expected, length
):
    layer = make_layer("weekly", datetime(2026, 2, 23, 9), ["Alice", "Bob", "Carol"])

    assert_handoff(layer, NEW_YORK, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("handoff", "expected", "length"),
    [
        ("2026-03-07T05:00Z", "Alice", hours(24)),
        ("2026-03-08T05:00Z", "Bob", hours(23)),  # Sun 00:00 EST
        ("2026-03-09T04:00Z", "Alice", hours(24)),  # Mon 00:00 EDT
        ("2026-10-30T04:00Z", "Bob", None),
        ("2026-10-31T04:00Z", "Alice", None),
        ("2026-11-01T04:00Z", "Bob", hours(25)),  # Sun 00:00 EDT
        ("2026-11-02T05:00Z", "Alice", None),  # Mon 00:00 EST
    ],
)
def test_example_2_daily_handoffs_stay_at_local_midnight(
    make_layer, people, handoff, expected, length
):
    layer = make_layer("daily", datetime(2026, 3, 7, 0), ["Alice", "Bob"])

    assert_handoff(layer, NEW_YORK, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("handoff", "expected", "length"),
    [
        ("2026-03-08T01:00Z", "Bob", hours(11)),  # Sat 20:00 EST -> Sun 08:00 EDT
        ("2026-03-08T12:00Z", "Alice", hours(12)),
        ("2026-11-01T00:00Z", "Bob", hours(13)),  # Sat 20:00 EDT -> Sun 08:00 EST
        ("2026-11-01T13:00Z", "Alice", hours(12)),
    ],
)
def test_example_3_twelve_hour_nights_are_eleven_and_thirteen_hours_at_dst(
    make_layer, people, handoff, expected, length
):
    layer = make_layer("hourly", datetime(2026, 3, 7, 8), ["Alice", "Bob"], turn_length=12)

    assert_handoff(layer, NEW_YORK, people, handoff, expected, length)


def test_example_3_alice_always_has_eight_to_twenty_local(make_layer, people):
    layer = make_layer("hourly", datetime(2026, 3, 7, 8), ["Alice", "Bob"], turn_length=12)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 11, 15, tzinfo=UTC)

    turns = turns_between(layer, NEW_YORK, start, end)

    local_starts = {
        (holder(layer, turn.participant_index, people), to_local(turn.start, NEW_YORK).hour)
        for turn in turns
    }
    assert local_starts == {("Alice", 8), ("Bob", 20)}


@pytest.mark.parametrize(
    ("handoff", "expected", "length"),
    [
        ("2026-03-16T08:00Z", "Alice", None),
        ("2026-03-23T08:00Z", "Bob", hours(167)),
        ("2026-03-30T07:00Z", "Alice", None),  # Mon 09:00 CEST
        ("2026-10-12T07:00Z", "Alice", None),
        ("2026-10-19T07:00Z", "Bob", hours(169)),
        ("2026-10-26T08:00Z", "Alice", None),  # Mon 09:00 CET
    ],
)
def test_example_4_weekly_handoffs_in_berlin_keep_monday_nine_local(
    make_layer, people, handoff, expected, length
):
    layer = make_layer("weekly", datetime(2026, 3, 16, 9), ["Alice", "Bob"])

    assert_handoff(layer, BERLIN, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("anchor", "handoff", "expected", "length"),
    [
        (datetime(2026, 3, 8, 0), "2026-03-08T05:00Z", "A", hours(1)),  # 00:00 EST
        (datetime(2026, 3, 8, 0), "2026-03-08T06:00Z", "B", hours(1)),  # ends 03:00 EDT
        (datetime(2026, 3, 8, 0), "2026-03-08T07:00Z", "C", hours(1)),  # 03:00 EDT
        (datetime(2026, 3, 8, 0), "2026-03-08T08:00Z", "A", hours(1)),
        (datetime(2026, 10, 31, 23), "2026-11-01T03:00Z", "A", hours(1)),
        (datetime(2026, 10, 31, 23), "2026-11-01T04:00Z", "B", hours(1)),  # 00:00 EDT
        (datetime(2026, 10, 31, 23), "2026-11-01T05:00Z", "C", hours(2)),  # to 02:00 EST
        (datetime(2026, 10, 31, 23), "2026-11-01T07:00Z", "A", hours(1)),  # 02:00 EST
    ],
)
def test_example_5_hourly_handoffs_skip_no_one_in_the_gap_and_stretch_in_the_repeat(
    make_layer, people, anchor, handoff, expected, length
):
    layer = make_layer("hourly", anchor, ["A", "B", "C"])

    assert_handoff(layer, NEW_YORK, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("anchor", "handoff", "expected", "length"),
    [
        (datetime(2026, 3, 6, 2, 30), "2026-03-06T07:30Z", "A", hours(24)),
        (datetime(2026, 3, 6, 2, 30), "2026-03-07T07:30Z", "B", hours(23.5)),
        (datetime(2026, 3, 6, 2, 30), "2026-03-08T07:00Z", "A", hours(23.5)),  # 03:00 EDT
        (datetime(2026, 3, 6, 2, 30), "2026-03-09T06:30Z", "B", hours(24)),  # 02:30 EDT
        (datetime(2026, 10, 30, 1, 30), "2026-10-31T05:30Z", "B", hours(24)),
        (datetime(2026, 10, 30, 1, 30), "2026-11-01T05:30Z", "A", hours(25)),  # first 01:30
        (datetime(2026, 10, 30, 1, 30), "2026-11-02T06:30Z", "B", None),  # 01:30 EST
    ],
)
def test_example_6_skipped_handoff_moves_to_end_of_gap_and_repeated_one_to_first_occurrence(
    make_layer, people, anchor, handoff, expected, length
):
    layer = make_layer("daily", anchor, ["A", "B"])

    assert_handoff(layer, NEW_YORK, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("anchor", "handoff", "expected", "length"),
    [
        # Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04 (+10:30 ->
        # +11) and 02:00 -> 01:30 on 2026-04-05.
        (datetime(2026, 10, 1, 2, 15), "2026-10-02T15:45Z", "Alice", hours(23.75)),
        (datetime(2026, 10, 1, 2, 15), "2026-10-03T15:30Z", "Bob", hours(23.75)),  # 02:30
        (datetime(2026, 10, 1, 2, 15), "2026-10-04T15:15Z", "Alice", hours(24)),
        (datetime(2026, 4, 3, 1, 45), "2026-04-03T14:45Z", "Bob", hours(24)),
        (datetime(2026, 4, 3, 1, 45), "2026-04-04T14:45Z", "Alice", hours(24.5)),  # first
        (datetime(2026, 4, 3, 1, 45), "2026-04-05T15:15Z", "Bob", hours(24)),
    ],
)
def test_daily_handoffs_follow_lord_howes_half_hour_dst(
    make_layer, people, anchor, handoff, expected, length
):
    layer = make_layer("daily", anchor, ["Alice", "Bob"])

    assert_handoff(layer, LORD_HOWE, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("handoff", "expected", "length"),
    [
        ("2026-10-03T13:30Z", "A", hours(1)),  # 00:00 +10:30
        ("2026-10-03T14:30Z", "B", hours(1)),  # 01:00, ends at 02:30 +11
        ("2026-10-03T15:30Z", "C", hours(0.5)),  # the 02:00 turn starts at 02:30
        ("2026-10-03T16:00Z", "A", hours(1)),  # 03:00 +11
    ],
)
def test_hourly_turns_in_lord_howe_spring_lose_half_an_hour_not_a_person(
    make_layer, people, handoff, expected, length
):
    layer = make_layer("hourly", datetime(2026, 10, 4, 0), ["A", "B", "C"])

    assert_handoff(layer, LORD_HOWE, people, handoff, expected, length)


@pytest.mark.parametrize(
    ("handoff", "expected"),
    [
        ("2026-03-01T03:30Z", "Alice"),
        ("2026-03-08T03:30Z", "Bob"),  # the day New York springs forward
        ("2026-03-29T03:30Z", "Alice"),  # the day Berlin springs forward
        ("2026-11-01T03:30Z", "Bob"),
        ("2026-12-31T03:30Z", "Bob"),
    ],
)
def test_daily_handoffs_in_kolkata_stay_at_the_same_instant_all_year(
    make_layer, people, handoff, expected
):
    layer = make_layer("daily", datetime(2026, 3, 1, 9), ["Alice", "Bob"])

    assert_handoff(layer, KOLKATA, people, handoff, expected, hours(24))


@pytest.mark.parametrize(
    ("zone", "handoff", "users_local"),
    [
        # A Kolkata schedule with a New York user: 09:00 IST is 03:30Z all year, so for the
        # user the handoff moves from 22:30 EST to 23:30 EDT the evening before.
        (KOLKATA, "2026-03-07T03:30Z", "2026-03-06T22:30-05:00"),
        (KOLKATA, "2026-03-09T03:30Z", "2026-03-08T23:30-04:00"),
        # A New York schedule with a Kolkata user: 09:00 New York is 19:30 IST in winter and
        # 18:30 IST in summer.
        (NEW_YORK, "2026-03-06T14:00Z", "2026-03-06T19:30+05:30"),
        (NEW_YORK, "2026-03-09T13:00Z", "2026-03-09T18:30+05:30"),
    ],
)
def test_handoffs_follow_the_schedules_zone_not_the_users(make_layer, zone, handoff, users_local):
    layer = make_layer("daily", datetime(2026, 3, 1, 9), ["Alice", "Bob"])

    turn = turn_at(layer, zone, datetime.fromisoformat(handoff))

    assert turn.start == datetime.fromisoformat(handoff)
    assert turn.start == datetime.fromisoformat(users_local)


@pytest.mark.parametrize(
    "anchor",
    [
        datetime(2026, 2, 23, 9),  # the example's anchor
        datetime(2026, 11, 2, 9),  # a later Alice handoff: earlier turns count backwards
        datetime(2023, 2, 6, 9),  # 159 weeks before
        datetime(2031, 3, 17, 9),  # 264 weeks after
    ],
)
def test_turns_are_the_same_whichever_alice_handoff_is_the_anchor(make_layer, people, anchor):
    layer = make_layer("weekly", datetime(2026, 2, 23, 9), ["Alice", "Bob", "Carol"])
    moved = make_layer("weekly", anchor, ["Alice", "Bob", "Carol"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2027, 1, 1, tzinfo=UTC)

    def named(turns):
        return [(t.start, t.end, holder(layer, t.participant_index, people)) for t in turns]

    expected = named(turns_between(layer, NEW_YORK, start, end))
    assert named(turns_between(moved, NEW_YORK, start, end)) == expected


@pytest.mark.parametrize(
    ("anchor", "at", "expected"),
    [
        # 26235 wall-clock hours later, but each of the four springs in between merged its
        # 02:00 and 03:00 handoffs (both at 03:00 EDT): turn 26231, C; floor(hours) says A.
        (datetime(2023, 3, 11, 0), "2026-03-08T07:30Z", "C"),
        # Counted backwards from three years later: 26373 hours back, two springs merged.
        (datetime(2029, 3, 11, 0), "2026-03-08T07:30Z", "C"),
        (datetime(2029, 3, 11, 0), "2026-03-08T06:30Z", "B"),
    ],
)
def test_hourly_turns_far_from_the_anchor_match_a_walk_over_every_handoff(
    make_layer, people, anchor, at, expected
):
    layer = make_layer("hourly", anchor, ["A", "B", "C"])
    instant = datetime.fromisoformat(at)

    turn = turn_at(layer, NEW_YORK, instant)

    assert holder(layer, turn.participant_index, people) == expected
    assert turn.number == walked_turn_number(layer, NEW_YORK, instant)


def walked_turn_number(layer: LayerDef, zone: ZoneInfo, at: datetime) -> int:
    """Count distinct handoff instants one by one from the anchor: slow, obviously right."""
    from tocsin.schedules.wallclock import to_instant

    step = timedelta(hours=layer.turn_length)
    number, index = 0, 0
    current = to_instant(layer.handoff, zone)
    if current <= at:
        while True:
            following = to_instant(layer.handoff + (index + 1) * step, zone)
            if following > at:
                return number
            if following != current:
                number += 1
            current, index = following, index + 1
    while current > at:
        index -= 1
        earlier = to_instant(layer.handoff + index * step, zone)
        if earlier != current:
            number -= 1
        current = earlier
    return number
