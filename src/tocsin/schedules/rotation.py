"""A layer's turns: when each participant holds the rotation, stepped on the schedule's wall clock.

Handoff k is the local handoff time plus k turn lengths of calendar days, weeks or clock hours,
converted to an instant (first instant after a skipped time, first occurrence of a repeated one).
Two handoffs can land on the same instant when a clock jump swallows one of them (1-hour turns
across a 1-hour spring-forward); they count as one, so nobody loses a turn. A turn's number is
therefore the count of distinct handoff instants since the anchor handoff, found by arithmetic
plus the few clock jumps in between, never by walking every turn from the anchor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tocsin.schedules.definition import LayerDef, Rotation
from tocsin.schedules.wallclock import clock_gaps, to_instant, to_local

# The longest span of wall-clock time the tz database ever skips (Samoa, 2011-12-30: a whole
# day). Turns longer than that never merge, so weekly rotations need not look for gaps.
_LONGEST_SKIP = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Turn:
    """One participant's turn [start, end); `number` counts handoffs from the anchor's turn 0."""

    start: datetime
    end: datetime
    number: int
    participant_index: int


def turn_length(layer: LayerDef) -> timedelta:
    """The wall-clock distance between two handoffs of `layer`."""
    if layer.rotation is Rotation.HOURLY:
        return timedelta(hours=layer.turn_length)
    if layer.rotation is Rotation.DAILY:
        return timedelta(days=layer.turn_length)
    return timedelta(weeks=layer.turn_length)


def turn_at(layer: LayerDef, zone: ZoneInfo, at: datetime) -> Turn:
    """The turn of `layer` that contains instant `at` (the layer's start and end are ignored)."""
    return next(iter_turns(layer, zone, at))


def turns_between(layer: LayerDef, zone: ZoneInfo, start: datetime, end: datetime) -> list[Turn]:
    """The whole turns of `layer` that overlap [start, end), in order."""
    turns: list[Turn] = []
    for turn in iter_turns(layer, zone, start):
        if turn.start >= end:
            break
        turns.append(turn)
    return turns


def iter_turns(layer: LayerDef, zone: ZoneInfo, at: datetime) -> Iterator[Turn]:
    """The turns of `layer` from the one containing `at` onwards, without end."""
    step = turn_length(layer)
    anchor = layer.handoff
    count = len(layer.participants)
    index, start, end = _locate(anchor, step, zone, at)
    number = _handoff_number(anchor, step, zone, index)
    while True:
        yield Turn(start, end, number, number % count)
        index += 1
        number += 1
        start = end
        end = to_instant(anchor + (index + 1) * step, zone)
        while end == start:
            index += 1
            end = to_instant(anchor + (index + 1) * step, zone)


def _locate(
    anchor: datetime, step: timedelta, zone: ZoneInfo, at: datetime
) -> tuple[int, datetime, datetime]:
    """The last handoff index at or before `at`, with its instant and the next handoff's."""
    # Local handoff times never map to instants out of order, and the local reading of `at`
    # maps back to `at` or (in a repeated hour) earlier, so this index is never too far
    # ahead; a repeated hour can leave it one or two handoffs behind.
    index = (to_local(at, zone) - anchor) // step
    start = to_instant(anchor + index * step, zone)
    end = to_instant(anchor + (index + 1) * step, zone)
    while end <= at:
        index += 1
        start = end
        end = to_instant(anchor + (index + 1) * step, zone)
    return index, start, end


def _handoff_number(anchor: datetime, step: timedelta, zone: ZoneInfo, index: int) -> int:
    """How many distinct handoff instants separate handoff `index` from the anchor's."""
    low, high = min(index, 0), max(index, 0)
    merged = _merged_handoffs(anchor, step, zone, low, high)
    return index - merged if index >= 0 else index + merged


def _merged_handoffs(anchor: datetime, step: timedelta, zone: ZoneInfo, low: int, high: int) -> int:
    """How many handoffs j in (low, high] share their instant with handoff j - 1.

    That happens only when both fall in the same skipped span of wall-clock time, or the first
    falls in it and the second on its end: every time in [gap.start, gap.end] maps to the
    instant of the jump. A span shorter than a turn holds at most one handoff.
    """
    if low == high or step > _LONGEST_SKIP:
        return 0
    merged = 0
    for gap in clock_gaps(zone, anchor + low * step, anchor + high * step):
        if gap.end - gap.start < step:
            continue
        first_inside = -((anchor - gap.start) // step)
        last_inside = (gap.end - anchor) // step
        first = max(first_inside + 1, low + 1)
        last = min(last_inside, high)
        if last >= first:
            merged += last - first + 1
    return merged
