"""Shifts: each layer's turns cut by its restrictions, then layers and overrides merged into one.

Precedence follows PagerDuty: an override beats every layer, a later layer beats an earlier one,
and time a higher source leaves empty falls through to the next one down. When overrides overlap,
the one later in the schedule's list wins, as the most recently added PagerDuty override does.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tocsin.schedules.definition import LayerDef, OverrideDef, Participant, ScheduleDef
from tocsin.schedules.restrictions import is_within_restrictions, restriction_windows
from tocsin.schedules.rotation import iter_turns, turn_at

UserIds = tuple[uuid.UUID, ...]


class SourceKind(enum.StrEnum):
    LAYER = "layer"
    OVERRIDE = "override"


@dataclass(frozen=True, slots=True)
class ShiftSource:
    """The layer or override a shift comes from."""

    kind: SourceKind
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Shift:
    """Users on call together over [start, end); `user_ids` sorted, without repeats."""

    start: datetime
    end: datetime
    user_ids: UserIds
    source: ShiftSource


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval [start, end) with nobody on call."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ShiftsResult:
    """The final shifts, each layer's own shifts by layer id, and the gaps, all within a range."""

    final: list[Shift]
    layers: dict[uuid.UUID, list[Shift]]
    gaps: list[Gap]


def layer_shifts(
    schedule: ScheduleDef, layer: LayerDef, start: datetime, end: datetime
) -> list[Shift]:
    """The shifts `layer` gives within [start, end), restrictions applied."""
    start, end = _checked_range(start, end)
    return _layer_shifts(ZoneInfo(schedule.time_zone), layer, start, end)


def final_shifts(schedule: ScheduleDef, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call within [start, end) once layers and overrides are merged."""
    return compute_shifts(schedule, start, end).final


def coverage_gaps(schedule: ScheduleDef, start: datetime, end: datetime) -> list[Gap]:
    """The intervals within [start, end) when nobody is on call."""
    return compute_shifts(schedule, start, end).gaps


def compute_shifts(schedule: ScheduleDef, start: datetime, end: datetime) -> ShiftsResult:
    """Final shifts, per-layer shifts and gaps within [start, end), computed once together."""
    start, end = _checked_range(start, end)
    zone = ZoneInfo(schedule.time_zone)
    layers = {layer.id: _layer_shifts(zone, layer, start, end) for layer in schedule.layers}
    # Each source, highest first, claims what is still free of what it covers.
    free = [(start, end)] if start < end else []
    claimed: list[Shift] = []
    for override in reversed(schedule.overrides):
        if override.start < end and start < override.end:
            free = _claim(free, [_override_shift(override, start, end)], claimed)
    for layer in reversed(schedule.layers):
        free = _claim(free, layers[layer.id], claimed)
    claimed.sort(key=lambda shift: shift.start)
    return ShiftsResult(
        final=_merge_touching(claimed),
        layers=layers,
        gaps=[Gap(gap_start, gap_end) for gap_start, gap_end in free],
    )


def override_at(overrides: Sequence[OverrideDef], at: datetime) -> OverrideDef | None:
    """The override in force at `at`, the last listed when several are."""
    for override in reversed(overrides):
        if override.start <= at < override.end:
            return override
    return None


def layer_users_at(layer: LayerDef, zone: ZoneInfo, at: datetime) -> UserIds:
    """Who `layer` puts on call at `at`; empty outside its span or its restriction windows."""
    if at < layer.start or (layer.end is not None and at >= layer.end):
        return ()
    if layer.restrictions and not is_within_restrictions(layer.restrictions, zone, at):
        return ()
    return users_of(layer.participants[turn_at(layer, zone, at).participant_index])


def users_of(participant: Participant | Iterable[uuid.UUID]) -> UserIds:
    """A participant's users, sorted and without repeats: the form every shift carries."""
    return tuple(sorted(set(participant)))


def _checked_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware instants")
    if end < start:
        raise ValueError("end must not be before start")
    return start.astimezone(UTC), end.astimezone(UTC)


def _layer_shifts(zone: ZoneInfo, layer: LayerDef, start: datetime, end: datetime) -> list[Shift]:
    start = max(start, layer.start).astimezone(UTC)
    if layer.end is not None:
        end = min(end, layer.end).astimezone(UTC)
    if start >= end:
        return []
    source = ShiftSource(SourceKind.LAYER, layer.id)
    groups = [users_of(participant) for participant in layer.participants]
    pieces: list[tuple[datetime, datetime, UserIds]] = []
    for turn in iter_turns(layer, zone, start):
        if turn.start >= end:
            break
        pieces.append((max(turn.start, start), min(turn.end, end), groups[turn.participant_index]))
    if layer.restrictions:
        pieces = _intersect(pieces, restriction_windows(layer.restrictions, zone, start, end))
    shifts: list[Shift] = []
    for piece_start, piece_end, users in pieces:
        if shifts and shifts[-1].end == piece_start and shifts[-1].user_ids == users:
            shifts[-1] = Shift(shifts[-1].start, piece_end, users, source)
        else:
            shifts.append(Shift(piece_start, piece_end, users, source))
    return shifts


def _override_shift(override: OverrideDef, start: datetime, end: datetime) -> Shift:
    return Shift(
        max(override.start, start).astimezone(UTC),
        min(override.end, end).astimezone(UTC),
        users_of(override.user_ids),
        ShiftSource(SourceKind.OVERRIDE, override.id),
    )


def _intersect(
    pieces: list[tuple[datetime, datetime, UserIds]], windows: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, UserIds]]:
    """The parts of sorted, disjoint `pieces` inside sorted, disjoint `windows`."""
    kept: list[tuple[datetime, datetime, UserIds]] = []
    index = 0
    for piece_start, piece_end, users in pieces:
        while index < len(windows) and windows[index][1] <= piece_start:
            index += 1
        probe = index
        while probe < len(windows) and windows[probe][0] < piece_end:
            low = max(piece_start, windows[probe][0])
            high = min(piece_end, windows[probe][1])
            if low < high:
                kept.append((low, high, users))
            probe += 1
    return kept


def _claim(
    free: list[tuple[datetime, datetime]], shifts: list[Shift], claimed: list[Shift]
) -> list[tuple[datetime, datetime]]:
    """Move the parts of sorted, disjoint `shifts` inside `free` into `claimed`; return the rest."""
    remaining: list[tuple[datetime, datetime]] = []
    index = 0
    for free_start, free_end in free:
        cursor = free_start
        while index < len(shifts) and shifts[index].end <= cursor:
            index += 1
        while index < len(shifts) and shifts[index].start < free_end:
            shift = shifts[index]
            low = max(shift.start, cursor)
            high = min(shift.end, free_end)
            if low > cursor:
                remaining.append((cursor, low))
            claimed.append(
                shift
                if low == shift.start and high == shift.end
                else Shift(low, high, shift.user_ids, shift.source)
            )
            cursor = high
            if shift.end > free_end:
                break  # the shift runs on into the next free interval
            index += 1
        if cursor < free_end:
            remaining.append((cursor, free_end))
    return remaining


def _merge_touching(shifts: list[Shift]) -> list[Shift]:
    """Join neighbours that touch and have the same users and source."""
    merged: list[Shift] = []
    for shift in shifts:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.end == shift.start
            and last.user_ids == shift.user_ids
            and last.source == shift.source
        ):
            merged[-1] = Shift(last.start, shift.end, shift.user_ids, shift.source)
        else:
            merged.append(shift)
    return merged
