"""When a layer's restriction windows are open, as instants, on the schedule's wall clock.

Each window opens at the first occurrence of its local start time and closes at the last
occurrence of its local end time, so on a fall-back night a window that starts or ends in the
repeated hour is longer rather than leaving a hole. A skipped local time means the first instant
after the jump, for starts and ends alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tocsin.schedules.definition import Restriction
from tocsin.schedules.wallclock import Occurrence, steady_local, to_instant, to_local

_DAY = timedelta(days=1)
_ALL_DAYS = frozenset(range(7))
# Longer than any window reaches either side of an instant it holds (it opened at most two
# local days before), plus any UTC offset.
_STEADY_SPAN = timedelta(days=2, hours=15)

# (offset of the opening from local midnight, offset of the closing, weekdays it opens on)
_Shape = tuple[timedelta, timedelta, frozenset[int]]


def restriction_windows(
    restrictions: Sequence[Restriction], zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) inside any window, as sorted, disjoint, non-touching intervals."""
    if start >= end:
        return []
    shapes = [_shape(restriction) for restriction in restrictions]
    # A window that opens the day before `start` may still be open; one day of slack each
    # side also covers repeated or skipped hours around midnight.
    day = _midnight(to_local(start, zone)) - _DAY
    last_day = _midnight(to_local(end, zone)) + _DAY
    windows: list[tuple[datetime, datetime]] = []
    while day <= last_day:
        weekday = day.weekday()
        for opens, closes, days in shapes:
            if weekday in days:
                window_start = max(to_instant(day + opens, zone), start)
                window_end = min(to_instant(day + closes, zone, Occurrence.LAST), end)
                if window_start < window_end:
                    windows.append((window_start, window_end))
        day += _DAY
    return _union(windows)


def is_within_restrictions(
    restrictions: Sequence[Restriction], zone: ZoneInfo, at: datetime
) -> bool:
    """Whether instant `at` falls inside one of the windows."""
    # Away from clock changes (nearly always), wall-clock comparisons give the same answer as
    # converting every window edge to an instant, at a fraction of the cost. A window that
    # could hold `at` opened at most two local days before it.
    local = steady_local(at, zone, _STEADY_SPAN)
    if local is not None:
        today = _midnight(local)
        for restriction in restrictions:
            opens, closes, days = _shape(restriction)
            for day in (today - _DAY, today):
                if day.weekday() in days and day + opens <= local < day + closes:
                    return True
        return False
    today = _midnight(to_local(at, zone))
    for restriction in restrictions:
        opens, closes, days = _shape(restriction)
        for day in (today - _DAY, today, today + _DAY):
            if (
                day.weekday() in days
                and to_instant(day + opens, zone) <= at
                and at < to_instant(day + closes, zone, Occurrence.LAST)
            ):
                return True
    return False


def window_offsets(restriction: Restriction) -> tuple[timedelta, timedelta]:
    """When a window opens and closes, as wall-clock time since the midnight of its day."""
    opens = _since_midnight(restriction.start)
    closes = _since_midnight(restriction.end)
    if closes <= opens:
        closes += _DAY
    return opens, closes


@functools.lru_cache(maxsize=65536)
def _shape(restriction: Restriction) -> _Shape:
    opens, closes = window_offsets(restriction)
    if restriction.days is None:
        return opens, closes, _ALL_DAYS
    return opens, closes, frozenset(day.number for day in restriction.days)


def _since_midnight(clock: time) -> timedelta:
    return timedelta(0, clock.hour * 3600 + clock.minute * 60 + clock.second, clock.microsecond)


def _midnight(local: datetime) -> datetime:
    return datetime(local.year, local.month, local.day)  # noqa: DTZ001 - naive wall clock


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, disjoint, non-touching cover of `intervals`."""
    intervals.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
