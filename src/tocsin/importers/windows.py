"""Weekly availability windows from any vendor, re-cut into Tocsin restrictions.

Vendors describe restrictions as spans that may overlap each other and run over several days
(PagerDuty: "Monday 09:00 for 5 days"; Opsgenie: "Friday 18:00 to Monday 08:00"). Tocsin's
windows lie within one day (or run past one midnight) and must not overlap. So the spans are
laid on one week of minutes, and each maximal run is cut at every midnight: windows that touch
merge back together when Tocsin computes them, so the coverage is the same.
"""

from __future__ import annotations

from datetime import time

from tocsin.schedules.definition import Restriction, Weekday

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_DAYS = tuple(Weekday)


def week_minute(weekday: int, hour: int, minute: int) -> int:
    """Minutes since Monday 00:00 of `weekday` (Monday 0) at hour:minute."""
    return weekday * MINUTES_PER_DAY + hour * 60 + minute


def restrictions_from_spans(spans: list[tuple[int, int]]) -> tuple[Restriction, ...] | None:
    """Windows covering the union of [start, start + length) week-minute spans.

    Spans may wrap past Sunday midnight. None means the spans cover the whole week (no
    restriction at all); an empty tuple cannot happen for a non-empty span list.
    """
    covered = covered_minutes(spans)
    if all(covered):
        return None
    windows: list[Restriction] = []
    for day in range(7):
        base = day * MINUTES_PER_DAY
        minute = 0
        while minute < MINUTES_PER_DAY:
            if not covered[base + minute]:
                minute += 1
                continue
            run_start = minute
            while minute < MINUTES_PER_DAY and covered[base + minute]:
                minute += 1
            windows.extend(_day_windows(_DAYS[day], run_start, minute))
    return tuple(windows)


def covered_minutes(spans: list[tuple[int, int]]) -> bytearray:
    """One byte per minute of the week: 1 where a [start, start + length) span covers it."""
    covered = bytearray(MINUTES_PER_WEEK)
    for start, length in spans:
        for minute in range(start, start + min(length, MINUTES_PER_WEEK)):
            covered[minute % MINUTES_PER_WEEK] = 1
    return covered


def overlap(first: bytearray, second: bytearray) -> bool:
    """Whether two weeks of covered minutes share a minute."""
    return any(a and b for a, b in zip(first, second, strict=True))


def _day_windows(day: Weekday, start: int, end: int) -> list[Restriction]:
    if start == 0 and end == MINUTES_PER_DAY:
        # A window's start must differ from its end: a whole day is two halves.
        return [
            Restriction(time(0, 0), time(12, 0), (day,)),
            Restriction(time(12, 0), time(0, 0), (day,)),
        ]
    return [Restriction(_clock(start), _clock(end % MINUTES_PER_DAY), (day,))]


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)
