"""Who is on call at one instant, computed directly rather than by rendering shifts.

The answer always matches the final shift from `tocsin.schedules.shifts` that contains the
instant; the two share the precedence rules and the per-layer lookup.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tocsin.schedules.definition import ScheduleDef
from tocsin.schedules.shifts import (
    ShiftSource,
    SourceKind,
    layer_users_at,
    override_at,
    users_of,
)


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call at `at`, and from which layer or override; nobody when `source` is None."""

    at: datetime
    user_ids: tuple[uuid.UUID, ...]
    source: ShiftSource | None


def who_is_on_call(schedule: ScheduleDef, at: datetime) -> OnCall:
    """The users on call in `schedule` at instant `at`: override first, then the highest layer."""
    if at.tzinfo is None:
        raise ValueError("at must be a timezone-aware instant")
    at = at.astimezone(UTC)
    override = override_at(schedule.overrides, at)
    if override is not None:
        return OnCall(
            at, users_of(override.user_ids), ShiftSource(SourceKind.OVERRIDE, override.id)
        )
    zone = ZoneInfo(schedule.time_zone)
    for layer in reversed(schedule.layers):
        users = layer_users_at(layer, zone, at)
        if users:
            return OnCall(at, users, ShiftSource(SourceKind.LAYER, layer.id))
    return OnCall(at, (), None)
