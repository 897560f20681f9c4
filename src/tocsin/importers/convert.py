"""Small conversions every source needs: instants, zones, turn lengths, vendor integration types."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tocsin.importers.source import Export, Kind, Lossy
from tocsin.integrations.models import IntegrationType
from tocsin.schedules.definition import Rotation

_HOUR = 3600
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY


class BadExport(ValueError):
    """The export or API answer is not what the vendor's API documents."""


def instant(value: str) -> datetime:
    """An ISO 8601 instant with an offset, as UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise BadExport(f"{value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def zone_or_utc(export: Export, kind: Kind, name: str, zone: str | None) -> str:
    """`zone` when it is an IANA zone Tocsin knows; UTC (noted as lossy) otherwise."""
    if zone:
        try:
            ZoneInfo(zone)
            return zone
        except (ZoneInfoNotFoundError, ValueError):
            pass
    export.lossy.append(Lossy(kind, name, f"time zone {zone!r} is not an IANA zone; UTC used"))
    return "UTC"


def rotation_for_seconds(
    export: Export, kind: Kind, name: str, seconds: int
) -> tuple[Rotation, int]:
    """The Tocsin rotation for a turn of `seconds`: weeks, days or hours, rounded when none fits."""
    if seconds >= _WEEK and seconds % _WEEK == 0:
        return Rotation.WEEKLY, seconds // _WEEK
    if seconds >= _DAY and seconds % _DAY == 0:
        return Rotation.DAILY, seconds // _DAY
    hours = max(1, round(seconds / _HOUR))
    if seconds % _HOUR:
        export.lossy.append(
            Lossy(
                kind,
                name,
                f"a turn of {seconds} s is not a whole number of hours; {hours} h used",
            )
        )
    return Rotation.HOURLY, hours


_VENDOR_TYPES = (
    ("datadog", IntegrationType.DATADOG),
    ("prometheus", IntegrationType.ALERTMANAGER),
    ("alertmanager", IntegrationType.ALERTMANAGER),
    ("cloudwatch", IntegrationType.CLOUDWATCH),
    ("grafana", IntegrationType.GRAFANA),
    ("opsgenie", IntegrationType.OPSGENIE),
    ("pagerduty", IntegrationType.PAGERDUTY),
    ("email", IntegrationType.EMAIL),
)


def integration_type_for(vendor: str) -> IntegrationType | None:
    """The Tocsin adapter for a monitoring tool named `vendor`, if there is one."""
    lowered = vendor.lower()
    for needle, type in _VENDOR_TYPES:
        if needle in lowered:
            return type
    return None
