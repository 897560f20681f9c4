"""Whether a maintenance window is on at an instant: pure, on the window's own wall clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WindowRule:
    id: object
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    weekdays: tuple[int, ...] = ()  # ISO: 1 Monday .. 7 Sunday
    start_time: time | None = None
    duration: timedelta | None = None
    timezone: str = "UTC"
    description: str = ""

    @property
    def recurring(self) -> bool:
        return self.start_time is not None


def is_on(window: WindowRule, at: datetime) -> bool:
    """One-off: starts_at <= at < ends_at. Recurring: `at` falls in an occurrence that
    started on one of the weekdays at start_time local time; an occurrence may run past
    midnight (and so is looked for on the days before). A start time that does not exist
    on a spring-forward day starts at the same wall time after the gap (zoneinfo's fold=0)."""
    if not window.recurring:
        if window.starts_at is None or window.ends_at is None:
            return False
        return window.starts_at <= at < window.ends_at
    assert window.start_time is not None and window.duration is not None
    zone = ZoneInfo(window.timezone)
    local = at.astimezone(zone)
    # Occurrences that could cover `at` began at most `duration` ago.
    days_back = window.duration.days + 1
    for back in range(days_back + 1):
        day = local.date() - timedelta(days=back)
        if day.isoweekday() not in window.weekdays:
            continue
        start = datetime.combine(day, window.start_time, tzinfo=zone)
        # Normalise through UTC so a start inside a DST gap becomes a real instant.
        start_utc = start.astimezone(UTC)
        if start_utc <= at < start_utc + window.duration:
            return True
    return False


def first_on(windows: Sequence[WindowRule], at: datetime) -> WindowRule | None:
    return next((w for w in windows if is_on(w, at)), None)
