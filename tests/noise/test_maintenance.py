"""Maintenance windows: one-off bounds, and weekly windows on their zone's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from tocsin.noise.maintenance import WindowRule, is_on

ONE_OFF = WindowRule(
    id=1,
    starts_at=datetime(2026, 3, 10, 9, tzinfo=UTC),
    ends_at=datetime(2026, 3, 10, 11, tzinfo=UTC),
)
# Every Tuesday and Saturday, 23:00 to 01:00 Paris time.
WEEKLY = WindowRule(
    id=2,
    weekdays=(2, 6),
    start_time=time(23, 0),
    duration=timedelta(hours=2),
    timezone="Europe/Paris",
)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 3, 10, 8, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 10, 9, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 10, 10, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 10, 11, 0, tzinfo=UTC), False),
    ],
)
def test_a_one_off_window_is_on_from_its_start_until_its_end(at: datetime, expected: bool) -> None:
    assert is_on(ONE_OFF, at) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Tuesday 2026-03-10, winter time (UTC+1): 23:00 Paris is 22:00 UTC.
        (datetime(2026, 3, 10, 21, 59, tzinfo=UTC), False),
        (datetime(2026, 3, 10, 22, 0, tzinfo=UTC), True),
        # Past midnight, now Wednesday in Paris: still Tuesday's occurrence.
        (datetime(2026, 3, 10, 23, 30, tzinfo=UTC), True),
        (datetime(2026, 3, 11, 0, 0, tzinfo=UTC), False),
        # Wednesday evening: no occurrence starts on Wednesday.
        (datetime(2026, 3, 11, 22, 30, tzinfo=UTC), False),
        # Saturday 2026-03-28, the night Paris moves to summer time at 02:00: 23:00 is UTC+1.
        (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), True),
        # Tuesday 2026-03-31, summer time (UTC+2): 23:00 Paris is 21:00 UTC.
        (datetime(2026, 3, 31, 21, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 31, 22, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 31, 23, 0, tzinfo=UTC), False),
    ],
)
def test_a_weekly_window_follows_its_zones_wall_clock(at: datetime, expected: bool) -> None:
    assert is_on(WEEKLY, at) is expected
