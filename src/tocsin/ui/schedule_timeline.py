"""A schedule's next 14 days drawn as the page shows them: one block per day of the viewer's
calendar, in it a bar for each layer, one for the overrides and one for the final schedule,
with gaps in coverage as their own (red, striped, labelled) pieces. Pure: the shifts come
from `compute_shifts`, the same answer as `/api/v1/schedules/{id}/shifts`."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tocsin.schedules.definition import LayerDef, OverrideDef
from tocsin.schedules.shifts import ShiftsResult, SourceKind

TIMELINE_DAYS = 14


@dataclass(frozen=True)
class Bar:
    """One piece of a row, placed by percent of its day."""

    left: float
    width: float
    label: str
    kind: str  # "shift" | "override" | "gap"
    title: str


@dataclass(frozen=True)
class Row:
    label: str
    kind: str  # "layer" | "overrides" | "final"
    bars: list[Bar]


@dataclass(frozen=True)
class Day:
    start: datetime
    end: datetime
    label: str
    is_today: bool
    rows: list[Row]

    @property
    def has_gap(self) -> bool:
        return any(bar.kind == "gap" for row in self.rows for bar in row.bars)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    user_ids: tuple[uuid.UUID, ...]
    kind: str  # "shift" | "override" | "gap"
    source_name: str


def local_days(zone: ZoneInfo, now: datetime, days: int = TIMELINE_DAYS) -> list[datetime]:
    """Midnights of the viewer's days from today on (days + 1 of them, the last one the end),
    as UTC instants; a day with a clock change is 23 or 25 hours long."""
    today = now.astimezone(zone).date()
    return [
        datetime.combine(today + timedelta(days=n), datetime.min.time(), tzinfo=zone).astimezone(
            UTC
        )
        for n in range(days + 1)
    ]


def final_intervals(
    result: ShiftsResult,
    layers: Sequence[LayerDef],
) -> list[Interval]:
    """The final shifts and the gaps, in time order, each with the name of where it comes from."""
    names = {layer.id: layer.name for layer in layers}
    found = [
        Interval(
            shift.start,
            shift.end,
            shift.user_ids,
            "override" if shift.source.kind == SourceKind.OVERRIDE else "shift",
            "Override"
            if shift.source.kind == SourceKind.OVERRIDE
            else names.get(shift.source.id, "Layer"),
        )
        for shift in result.final
    ]
    found += [Interval(gap.start, gap.end, (), "gap", "No one on call") for gap in result.gaps]
    found.sort(key=lambda item: item.start)
    return found


def _people(user_ids: Sequence[uuid.UUID], names: Mapping[uuid.UUID, str]) -> str:
    return " + ".join(names.get(uid, "unknown user") for uid in user_ids) or "No one"


def _bars(
    intervals: Sequence[Interval],
    day_start: datetime,
    day_end: datetime,
    names: Mapping[uuid.UUID, str],
    describe: Callable[[datetime, datetime], str],
) -> list[Bar]:
    length = (day_end - day_start).total_seconds()
    bars: list[Bar] = []
    for item in intervals:
        low, high = max(item.start, day_start), min(item.end, day_end)
        if low >= high:
            continue
        who = "No one on call" if item.kind == "gap" else _people(item.user_ids, names)
        label = "⚠ No one" if item.kind == "gap" else who
        if item.kind == "override":
            label = "⇄ " + label
        bars.append(
            Bar(
                left=round((low - day_start).total_seconds() / length * 100, 3),
                width=round((high - low).total_seconds() / length * 100, 3),
                label=label,
                kind=item.kind,
                title=f"{who}: {describe(item.start, item.end)}"
                + (f" ({item.source_name})" if item.kind != "gap" else ""),
            )
        )
    return bars


def build_days(
    result: ShiftsResult,
    layers: Sequence[LayerDef],
    overrides: Sequence[OverrideDef],
    *,
    day_starts: Sequence[datetime],
    zone: ZoneInfo,
    now: datetime,
    names: Mapping[uuid.UUID, str],
) -> list[Day]:
    """The timeline, one Day per pair of consecutive `day_starts`."""
    per_layer = [
        (
            layer.name,
            [
                Interval(s.start, s.end, s.user_ids, "shift", layer.name)
                for s in result.layers.get(layer.id, [])
            ],
        )
        for layer in layers
    ]
    override_items = [
        Interval(o.start, o.end, tuple(o.user_ids), "override", "Override") for o in overrides
    ]
    final = final_intervals(result, layers)
    today = now.astimezone(zone).date()

    def describe(start: datetime, end: datetime) -> str:
        return f"{start.astimezone(zone):%a %d %b %H:%M} to {end.astimezone(zone):%a %d %b %H:%M}"

    days: list[Day] = []
    for day_start, day_end in itertools.pairwise(day_starts):
        rows = [
            Row(name, "layer", _bars(items, day_start, day_end, names, describe))
            for name, items in per_layer
        ]
        if override_items:
            bars = _bars(override_items, day_start, day_end, names, describe)
            rows.append(Row("Overrides", "overrides", bars))
        rows.append(Row("Final", "final", _bars(final, day_start, day_end, names, describe)))
        local = day_start.astimezone(zone)
        days.append(
            Day(
                start=day_start,
                end=day_end,
                label=f"{local:%a %d %b}",
                is_today=local.date() == today,
                rows=rows,
            )
        )
    return days
