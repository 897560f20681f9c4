"""Checks that a schedule definition makes sense, with the offending field named.

Meant for the edge (the API schemas call these); the computations trust what passed.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tocsin.errors import InvalidInput
from tocsin.schedules.definition import LayerDef, OverrideDef, Restriction, ScheduleDef
from tocsin.schedules.restrictions import window_offsets
from tocsin.schedules.wallclock import MAX_YEAR, MIN_YEAR

_DAY = timedelta(days=1)
_WEEK = timedelta(weeks=1)


class InvalidSchedule(InvalidInput, ValueError):
    """A schedule definition that cannot be computed; `field` is a path like `layers[0].end`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.message = message


def load_zone(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone called `name`; InvalidSchedule when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        # ValueError: keys that are not relative paths ("/etc/passwd", "").
        raise InvalidSchedule(field, f"unknown time zone {name!r}") from None


def validate_schedule(schedule: ScheduleDef) -> None:
    """Raise InvalidSchedule for the first thing wrong with `schedule`."""
    load_zone(schedule.time_zone)
    seen: set[uuid.UUID] = set()
    for index, layer in enumerate(schedule.layers):
        field = f"layers[{index}]"
        if layer.id in seen:
            raise InvalidSchedule(f"{field}.id", "another layer has the same id")
        seen.add(layer.id)
        validate_layer(layer, field)
    for index, override in enumerate(schedule.overrides):
        validate_override(override, f"overrides[{index}]")


def validate_layer(layer: LayerDef, field: str = "layer") -> None:
    """Raise InvalidSchedule when `layer` is inconsistent."""
    _check_instant(layer.start, f"{field}.start")
    if layer.end is not None:
        _check_instant(layer.end, f"{field}.end")
        if layer.end <= layer.start:
            raise InvalidSchedule(f"{field}.end", "must be after start")
    if isinstance(layer.turn_length, bool) or layer.turn_length < 1:
        raise InvalidSchedule(f"{field}.turn_length", "must be at least 1")
    if layer.handoff.tzinfo is not None:
        raise InvalidSchedule(
            f"{field}.handoff", "must be a local date-time without a zone (the schedule's)"
        )
    if not MIN_YEAR + 1 <= layer.handoff.year <= MAX_YEAR - 1:
        raise InvalidSchedule(f"{field}.handoff", "is outside the supported years")
    if not layer.participants:
        raise InvalidSchedule(f"{field}.participants", "must name at least one participant")
    for index, participant in enumerate(layer.participants):
        if not participant:
            raise InvalidSchedule(f"{field}.participants[{index}]", "must name at least one user")
    validate_restrictions(layer.restrictions, f"{field}.restrictions")


def validate_restrictions(restrictions: Sequence[Restriction], field: str = "restrictions") -> None:
    """Raise InvalidSchedule for an empty window, an empty day list, or windows that overlap."""
    spans: list[tuple[timedelta, timedelta, int]] = []
    for index, restriction in enumerate(restrictions):
        here = f"{field}[{index}]"
        if restriction.start.tzinfo is not None or restriction.end.tzinfo is not None:
            raise InvalidSchedule(here, "start and end are wall-clock times without a zone")
        if restriction.start == restriction.end:
            raise InvalidSchedule(f"{here}.end", "must differ from start")
        if restriction.days is not None and not restriction.days:
            raise InvalidSchedule(f"{here}.days", "must name a day, or be omitted for every day")
        spans.extend((start, end, index) for start, end in _week_spans(restriction))
    # On a week laid flat from Monday 00:00, every window is one span or, when it runs past
    # Sunday midnight, two; sorted, each span must end before the next begins.
    spans.sort()
    for (_, end, index), (next_start, _, next_index) in itertools.pairwise(spans):
        if next_start < end:
            first, second = sorted((index, next_index))
            raise InvalidSchedule(
                f"{field}[{second}]", f"overlaps {field}[{first}] on the same day"
            )


def validate_override(override: OverrideDef, field: str = "override") -> None:
    """Raise InvalidSchedule when `override` is empty or ends before it starts."""
    _check_instant(override.start, f"{field}.start")
    _check_instant(override.end, f"{field}.end")
    if override.end <= override.start:
        raise InvalidSchedule(f"{field}.end", "must be after start")
    if not override.user_ids:
        raise InvalidSchedule(f"{field}.user_ids", "must name at least one user")


def _check_instant(instant: datetime, field: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidSchedule(field, "must be a timezone-aware instant")
    if not MIN_YEAR + 1 <= instant.year <= MAX_YEAR - 1:
        raise InvalidSchedule(field, "is outside the supported years")


def _week_spans(restriction: Restriction) -> list[tuple[timedelta, timedelta]]:
    opens, closes = window_offsets(restriction)
    days = (
        range(7) if restriction.days is None else sorted({day.number for day in restriction.days})
    )
    spans: list[tuple[timedelta, timedelta]] = []
    for day in days:
        start, end = day * _DAY + opens, day * _DAY + closes
        if end > _WEEK:
            spans.extend([(start, _WEEK), (timedelta(0), end - _WEEK)])
        else:
            spans.append((start, end))
    return spans
