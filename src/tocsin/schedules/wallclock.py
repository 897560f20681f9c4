"""Wall-clock time <-> instants in an IANA zone, with Tocsin's rules for skipped and repeated times.

A wall-clock time that does not exist (clocks jumped over it) becomes the first instant after the
jump. A time that happens twice (clocks went back) becomes its first or last occurrence, as the
caller asks: handoffs and window starts take the first, window ends the last.

Conversions read a per-zone, per-year table of UTC offset changes built once from `zoneinfo` and
cached. Going through `datetime.replace(tzinfo=..., fold=...)` for every handoff and window edge
costs several microseconds each, and "who is on call" for a thousand schedules makes tens of
thousands of them; a bisection over a small cached tuple costs a fraction of that.
"""

from __future__ import annotations

import bisect
import enum
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - the wall clock's own epoch
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
# A year's table reaches this far into its neighbours, further than any UTC offset (+/-14 h)
# plus any skipped span (24 h at most, Samoa 2011), so one table answers for a whole year.
_MARGIN = timedelta(days=3)
MIN_YEAR = 2
MAX_YEAR = 9997


class Occurrence(enum.Enum):
    """Which instant a repeated wall-clock time stands for."""

    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class ClockGap:
    """Wall-clock times [start, end) that never happen: at `at` clocks jump from start to end."""

    start: datetime
    end: datetime
    at: datetime


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of an aware `instant` in `zone`."""
    naive_utc = _NAIVE_EPOCH + (instant - _UTC_EPOCH)
    table = _year_table(zone, naive_utc.year)
    period = bisect.bisect_right(table.instants, naive_utc)
    return naive_utc + table.offsets[period]


def steady_local(instant: datetime, zone: ZoneInfo, span: timedelta) -> datetime | None:
    """The wall-clock reading of `instant` when the UTC offset of `zone` does not change within
    `span` either side of it (so wall-clock and instant comparisons agree there), else None.

    `span` must stay under three days, the reach of a year's table into its neighbours.
    """
    naive_utc = _NAIVE_EPOCH + (instant - _UTC_EPOCH)
    table = _year_table(zone, naive_utc.year)
    period = bisect.bisect_right(table.instants, naive_utc)
    if bisect.bisect_right(table.instants, naive_utc - span) != period:
        return None
    if bisect.bisect_right(table.instants, naive_utc + span) != period:
        return None
    return naive_utc + table.offsets[period]


def to_instant(
    local: datetime, zone: ZoneInfo, occurrence: Occurrence = Occurrence.FIRST
) -> datetime:
    """The UTC instant of naive wall-clock `local` in `zone` (skipped -> first instant after)."""
    table = _year_table(zone, local.year)
    # Period i runs from instants[i-1] to instants[i]; its wall clock ends at local_ends[i].
    # The first period whose wall clock has not ended at `local` is the one it belongs to,
    # unless `local` falls short of that period's start: then it was skipped.
    period = bisect.bisect_right(table.local_ends, local)
    if period > 0 and local < table.local_starts[period - 1]:
        return _UTC_EPOCH + (table.instants[period - 1] - _NAIVE_EPOCH)
    offset = table.offsets[period]
    if (
        occurrence is Occurrence.LAST
        and period < len(table.instants)
        and local >= table.local_starts[period]
    ):
        offset = table.offsets[period + 1]
    return _UTC_EPOCH + (local - offset - _NAIVE_EPOCH)


def clock_gaps(zone: ZoneInfo, start: datetime, end: datetime) -> list[ClockGap]:
    """The skipped spans of wall-clock time in `zone` that touch naive local [start, end]."""
    found: list[ClockGap] = []
    for year in range(max(start.year - 1, MIN_YEAR), min(end.year + 1, MAX_YEAR) + 1):
        found.extend(
            gap for gap in _year_table(zone, year).gaps if gap.end >= start and gap.start <= end
        )
    return found


@dataclass(frozen=True, slots=True)
class _YearTable:
    """UTC offset changes of one zone around one UTC calendar year, ready for bisection."""

    instants: tuple[datetime, ...]  # naive UTC instants of each change
    offsets: tuple[timedelta, ...]  # offsets[i] holds before instants[i], offsets[-1] after all
    local_ends: tuple[datetime, ...]  # instants[i] + offsets[i]: wall clock just before change i
    local_starts: tuple[datetime, ...]  # instants[i] + offsets[i + 1]: wall clock just after it
    gaps: tuple[ClockGap, ...]  # forward jumps whose instant is inside the year itself


@functools.lru_cache(maxsize=4096)
def _year_table(zone: ZoneInfo, year: int) -> _YearTable:
    """The offset changes of `zone` from three days before `year` to three days after it.

    Offsets are sampled once a day and each change is bisected to its second. Two changes inside
    one day would hide each other; the tz database has none in the years schedules use.
    """
    if year < MIN_YEAR or year > MAX_YEAR:
        raise ValueError(f"year {year} is outside the supported range {MIN_YEAR}-{MAX_YEAR}")
    year_start = datetime(year, 1, 1, tzinfo=UTC)
    year_end = datetime(year + 1, 1, 1, tzinfo=UTC)
    instant = year_start - _MARGIN
    stop = year_end + _MARGIN
    offset = _offset_at(instant, zone)
    instants: list[datetime] = []
    offsets = [offset]
    gaps: list[ClockGap] = []
    while instant < stop:
        following = instant + _DAY
        next_offset = _offset_at(following, zone)
        if next_offset != offset:
            change = _change_after(zone, instant, offset)
            naive = change.replace(tzinfo=None)
            instants.append(naive)
            offsets.append(next_offset)
            if next_offset > offset and year_start <= change < year_end:
                gaps.append(ClockGap(start=naive + offset, end=naive + next_offset, at=change))
        instant, offset = following, next_offset
    return _YearTable(
        instants=tuple(instants),
        offsets=tuple(offsets),
        local_ends=tuple(at + offsets[i] for i, at in enumerate(instants)),
        local_starts=tuple(at + offsets[i + 1] for i, at in enumerate(instants)),
        gaps=tuple(gaps),
    )


def _offset_at(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always answers
        raise ValueError(f"{zone} has no UTC offset at {instant}")
    return offset


def _change_after(zone: ZoneInfo, instant: datetime, offset: timedelta) -> datetime:
    """The first instant after `instant` whose offset is not `offset`, to the second.

    The tz database puts every change on a whole second, and the caller knows one comes within
    a day, so this takes at most 17 steps.
    """
    low = int(instant.timestamp())
    high = low + 86_400
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(datetime.fromtimestamp(middle, UTC), zone) == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
