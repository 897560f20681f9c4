"""Vendor restriction spans re-cut into Tocsin's windows: the same minutes of the week are
covered, whatever the spans' overlaps, lengths and wrap past Sunday midnight."""

from __future__ import annotations

from datetime import time

import pytest

from tocsin.importers.windows import (
    MINUTES_PER_DAY,
    covered_minutes,
    restrictions_from_spans,
    week_minute,
)
from tocsin.schedules.definition import Restriction, Weekday
from tocsin.schedules.validation import validate_restrictions

MON, TUE, FRI, SAT, SUN = Weekday.MON, Weekday.TUE, Weekday.FRI, Weekday.SAT, Weekday.SUN


def window(start: str, end: str, day: Weekday) -> Restriction:
    return Restriction(time.fromisoformat(start), time.fromisoformat(end), (day,))


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        # Monday 09:00 for 8 hours.
        ([(week_minute(0, 9, 0), 8 * 60)], (window("09:00", "17:00", MON),)),
        # Saturday 08:00 for 48 hours: cut at each midnight, whole Sunday in two halves.
        (
            [(week_minute(5, 8, 0), 48 * 60)],
            (
                window("08:00", "00:00", SAT),
                window("00:00", "12:00", SUN),
                window("12:00", "00:00", SUN),
                window("00:00", "08:00", MON),
            ),
        ),
        # Two overlapping spans become one window.
        (
            [(week_minute(1, 9, 0), 4 * 60), (week_minute(1, 11, 0), 6 * 60)],
            (window("09:00", "17:00", TUE),),
        ),
        # Sunday 22:00 for 4 hours wraps past the end of the week into Monday.
        (
            [(week_minute(6, 22, 0), 4 * 60)],
            (window("00:00", "02:00", MON), window("22:00", "00:00", SUN)),
        ),
    ],
)
def test_spans_become_windows_covering_the_same_minutes(
    spans: list[tuple[int, int]], expected: tuple[Restriction, ...]
) -> None:
    windows = restrictions_from_spans(spans)
    assert windows is not None
    assert sorted(windows, key=lambda w: (w.days, w.start)) == sorted(
        expected, key=lambda w: (w.days, w.start)
    )
    validate_restrictions(windows)  # Tocsin accepts them: no empty or overlapping window


def test_spans_covering_the_whole_week_mean_no_restriction() -> None:
    every_day = [(day * MINUTES_PER_DAY, MINUTES_PER_DAY) for day in range(7)]
    assert restrictions_from_spans(every_day) is None
    assert all(covered_minutes(every_day))
