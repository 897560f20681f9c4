"""Times as a person reads them: in their own zone, with the zone named, and ages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Clockface:
    """Formats instants for one viewer: `when` in their zone, `ago` relative to now."""

    zone: ZoneInfo
    now: datetime

    @property
    def zone_name(self) -> str:
        return self.zone.key

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def when(self, at: datetime | None) -> str:
        """`Tue 10 Mar 10:00 CET`: the day is left out for today, the year for this year."""
        if at is None:
            return ""
        local = self.local(at)
        today = self.local(self.now).date()
        if local.date() == today:
            text = local.strftime("%H:%M")
        elif local.year == today.year:
            text = local.strftime("%a %d %b %H:%M")
        else:
            text = local.strftime("%d %b %Y %H:%M")
        return f"{text} {local.tzname() or self.zone_name}"

    def full(self, at: datetime | None) -> str:
        """`2026-03-10 10:00:05 CET (Europe/Paris)`: for titles and tooltips."""
        if at is None:
            return ""
        local = self.local(at)
        return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({self.zone_name})"

    def ago(self, at: datetime | None) -> str:
        """`45 s`, `12 min`, `3 h`, `2 d`: how long before now."""
        if at is None:
            return ""
        seconds = max(0, int((self.now - at).total_seconds()))
        if seconds < 60:
            return f"{seconds} s"
        if seconds < 3600:
            return f"{seconds // 60} min"
        if seconds < 86400:
            return f"{seconds // 3600} h"
        return f"{seconds // 86400} d"
