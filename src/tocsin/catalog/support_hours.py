"""A service's support hours: weekly windows on a zone's wall clock, and whether an instant
falls inside one. Pure; the stored form is a JSON object (`Service.support_hours`).

A window runs from `start` to `end` wall-clock time on each of its weekdays; an end at or
before the start runs past midnight into the next day. Both ends are read on the wall clock
of that day (not start + a fixed duration), so 09:00-17:00 stays 09:00-17:00 on the days the
clocks change. A wall time that does not exist (inside a spring-forward gap) is taken as the
same wall time after the gap, as zoneinfo does with fold=0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class SupportWindow:
    weekdays: frozenset[int]  # ISO: 1 Monday .. 7 Sunday (the day the window starts)
    start: time
    end: time

    @property
    def overnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class SupportHours:
    timezone: str
    windows: tuple[SupportWindow, ...]


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def from_stored(stored: Mapping[str, Any] | None) -> SupportHours | None:
    """The pure form of `Service.support_hours` (validated when it was written)."""
    if not stored:
        return None
    return SupportHours(
        timezone=str(stored.get("timezone") or "UTC"),
        windows=tuple(
            SupportWindow(
                frozenset(int(d) for d in w["weekdays"]),
                _hhmm(w["start_time"]),
                _hhmm(w["end_time"]),
            )
            for w in stored.get("windows", ())
        ),
    )


def _instant(day: Any, at: time, zone: ZoneInfo) -> datetime:
    # Through UTC, so a wall time inside a DST gap becomes a real instant.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def within_support_hours(hours: SupportHours, at: datetime) -> bool:
    """Whether `at` falls inside one of the windows."""
    zone = ZoneInfo(hours.timezone)
    today = at.astimezone(zone).date()
    for window in hours.windows:
        # A window that began yesterday may still be running (overnight ones only).
        for day in (today, today - timedelta(days=1)):
            if day.isoweekday() not in window.weekdays:
                continue
            if day != today and not window.overnight:
                continue
            end_day = day + timedelta(days=1) if window.overnight else day
            if _instant(day, window.start, zone) <= at < _instant(end_day, window.end, zone):
                return True
    return False
