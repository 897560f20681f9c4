"""Wall clock <-> instants: skipped times go to the end of the jump, repeated times to the
occurrence asked for, and the cached offset tables agree with zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.schedules.wallclock import ClockGap, Occurrence, clock_gaps, to_instant, to_local

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")
TROLL = ZoneInfo("Antarctica/Troll")  # jumps two hours at once
APIA = ZoneInfo("Pacific/Apia")  # skipped 2011-12-30 entirely
ZONES = [NEW_YORK, BERLIN, LORD_HOWE, KOLKATA, TROLL, APIA]


@pytest.mark.parametrize(
    ("zone", "local", "occurrence", "expected"),
    [
        (NEW_YORK, datetime(2026, 3, 8, 2, 30), Occurrence.FIRST, "2026-03-08T07:00Z"),
        (NEW_YORK, datetime(2026, 3, 8, 2, 30), Occurrence.LAST, "2026-03-08T07:00Z"),
        (NEW_YORK, datetime(2026, 3, 8, 3, 0), Occurrence.FIRST, "2026-03-08T07:00Z"),
        (NEW_YORK, datetime(2026, 3, 8, 1, 59), Occurrence.FIRST, "2026-03-08T06:59Z"),
        (NEW_YORK, datetime(2026, 11, 1, 1, 30), Occurrence.FIRST, "2026-11-01T05:30Z"),
        (NEW_YORK, datetime(2026, 11, 1, 1, 30), Occurrence.LAST, "2026-11-01T06:30Z"),
        (NEW_YORK, datetime(2026, 11, 1, 2, 0), Occurrence.FIRST, "2026-11-01T07:00Z"),
        (NEW_YORK, datetime(2026, 11, 1, 0, 59), Occurrence.LAST, "2026-11-01T04:59Z"),
        (BERLIN, datetime(2026, 3, 29, 2, 30), Occurrence.FIRST, "2026-03-29T01:00Z"),
        (BERLIN, datetime(2026, 10, 25, 2, 30), Occurrence.FIRST, "2026-10-25T00:30Z"),
        (BERLIN, datetime(2026, 10, 25, 2, 30), Occurrence.LAST, "2026-10-25T01:30Z"),
        (LORD_HOWE, datetime(2026, 10, 4, 2, 15), Occurrence.FIRST, "2026-10-03T15:30Z"),
        (LORD_HOWE, datetime(2026, 4, 5, 1, 45), Occurrence.FIRST, "2026-04-04T14:45Z"),
        (LORD_HOWE, datetime(2026, 4, 5, 1, 45), Occurrence.LAST, "2026-04-04T15:15Z"),
        (KOLKATA, datetime(2026, 3, 8, 2, 30), Occurrence.FIRST, "2026-03-07T21:00Z"),
        (TROLL, datetime(2026, 3, 29, 2, 0), Occurrence.FIRST, "2026-03-29T01:00Z"),
        (APIA, datetime(2011, 12, 30, 12, 0), Occurrence.FIRST, "2011-12-30T10:00Z"),
    ],
)
def test_local_times_become_instants_by_the_gap_and_repeat_rules(zone, local, occurrence, expected):
    assert to_instant(local, zone, occurrence) == datetime.fromisoformat(expected)


def test_clock_gaps_lists_each_jump_once():
    gaps = clock_gaps(NEW_YORK, datetime(2025, 12, 1), datetime(2027, 1, 1))

    assert gaps == [
        ClockGap(
            datetime(2026, 3, 8, 2),
            datetime(2026, 3, 8, 3),
            datetime(2026, 3, 8, 7, tzinfo=UTC),
        )
    ]


def reference_instant(local: datetime, zone: ZoneInfo, occurrence: Occurrence) -> datetime:
    """Straight from PEP 495 and a minute-by-minute scan, without the cached tables."""
    early = local.replace(tzinfo=zone, fold=0)
    late = local.replace(tzinfo=zone, fold=1)
    first, second = sorted((early.astimezone(UTC), late.astimezone(UTC)))
    exists = [t for t in (first, second) if t.astimezone(zone).replace(tzinfo=None) == local]
    if exists:
        return exists[0] if occurrence is Occurrence.FIRST else exists[-1]
    # Skipped: the first instant whose wall clock reads `local` or later.
    probe = first.replace(second=0, microsecond=0)
    while probe.astimezone(zone).replace(tzinfo=None) < local:
        probe += timedelta(minutes=1)
    return probe


local_times = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1)),
    # Quarter hours around the 2026 changes, where the rules matter.
    st.builds(
        lambda base, quarters: base + timedelta(minutes=15 * quarters),
        st.sampled_from(
            [
                datetime(2026, 3, 8, 2),
                datetime(2026, 11, 1, 1),
                datetime(2026, 3, 29, 2),
                datetime(2026, 10, 25, 2),
                datetime(2026, 4, 5, 1, 30),
                datetime(2026, 10, 4, 2),
                datetime(2011, 12, 30, 0),
            ]
        ),
        st.integers(-8, 8),
    ),
)


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), local=local_times, occurrence=st.sampled_from(Occurrence))
def test_to_instant_agrees_with_zoneinfo(zone, local, occurrence):
    assert to_instant(local, zone, occurrence) == reference_instant(local, zone, occurrence)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    instant=st.datetimes(datetime(2011, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
)
def test_to_local_agrees_with_zoneinfo(zone, instant):
    local = to_local(instant, zone)

    assert local == instant.astimezone(zone).replace(tzinfo=None)
    assert local.tzinfo is None
    assert to_instant(local, zone, Occurrence.FIRST) <= instant
    assert instant <= to_instant(local, zone, Occurrence.LAST)
