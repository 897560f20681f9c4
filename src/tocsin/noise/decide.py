"""Which alerts of a batch open no incident, and why: maintenance, then silences, then
inhibition (grouping and dedup come after, in the pipeline).

`load_noise` reads what is in force for a batch in a few queries; `suppression_for` is the
pure decision for one alert. A suppressed alert is still stored, with its reason.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, select

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.catalog.models import Service
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.noise.maintenance import WindowRule, first_on
from tocsin.noise.matchers import labels_of, matches_all, tag_label
from tocsin.noise.models import MaintenanceWindow
from tocsin.noise.rulecache import rules_in_force
from tocsin.noise.rules import Inhibition, LeadIndex, SilenceRule, empty_index
from tocsin.store.connection import Connection


class SuppressionKind(enum.StrEnum):
    MAINTENANCE = "maintenance"
    SILENCE = "silence"
    INHIBITION = "inhibition"
    # Not suppressed outright: it joined its group's incident and paged nobody new
    # (noise/grouping.py). The id is the incident's.
    GROUP = "group"


@dataclass(frozen=True)
class Suppression:
    """Why an alert opened no incident: which window, silence or rule."""

    kind: SuppressionKind
    id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class Candidate:
    """A firing, routed alert as the noise rules see it."""

    labels: Mapping[str, str]
    team_id: uuid.UUID
    service_id: uuid.UUID | None


@dataclass(frozen=True)
class Source:
    """A firing alert that may inhibit others."""

    labels: Mapping[str, str]
    team_id: uuid.UUID


@dataclass
class NoiseInForce:
    """What is in force for one batch."""

    # Every silence not expired yet, some maybe not started or already ended: the decision
    # checks the time.
    silences: LeadIndex[SilenceRule] = field(default_factory=empty_index)
    windows: dict[uuid.UUID, list[WindowRule]] = field(default_factory=dict)
    inhibitions: LeadIndex[Inhibition] = field(default_factory=empty_index)
    service_names: dict[uuid.UUID, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.silences.size or self.windows or self.inhibitions.size)


def _in_scope(rule_team: uuid.UUID | None, team_id: uuid.UUID) -> bool:
    return rule_team is None or rule_team == team_id


def _equal_on(rule: Inhibition, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    # A label missing on both sides counts as equal (both empty), as in Alertmanager.
    return all(a.get(tag_label(n), "") == b.get(tag_label(n), "") for n in rule.equal)


def inhibited_by(rule: Inhibition, target: Candidate, sources: Iterable[Source]) -> bool:
    """Whether a firing source alert inhibits `target` under this rule. An alert matching both
    sides is only inhibited by sources that do not also match the target side (so two
    alerts that each match both sides do not silence each other), as in Alertmanager."""
    if not _in_scope(rule.team_id, target.team_id) or not matches_all(rule.target, target.labels):
        return False
    two_sided = matches_all(rule.source, target.labels)
    for source in sources:
        if source.labels is target.labels or not _in_scope(rule.team_id, source.team_id):
            continue
        if not matches_all(rule.source, source.labels) or not _equal_on(
            rule, source.labels, target.labels
        ):
            continue
        if two_sided and matches_all(rule.target, source.labels):
            continue
        return True
    return False


def suppression_for(
    candidate: Candidate, noise: NoiseInForce, sources: Sequence[Source], *, at: datetime
) -> Suppression | None:
    """The first reason, in order maintenance -> silence -> inhibition, for this alert to open
    no incident; None if it goes on to grouping and dedup."""
    if candidate.service_id is not None:
        window = first_on(noise.windows.get(candidate.service_id, ()), at)
        if window is not None:
            assert isinstance(window.id, uuid.UUID)
            name = noise.service_names.get(candidate.service_id, "the service")
            text = f"{name} is in maintenance"
            if window.description:
                text += f": {window.description}"
            return Suppression(SuppressionKind.MAINTENANCE, window.id, text)
    for silence in noise.silences.matching(candidate.labels):
        if _in_scope(silence.team_id, candidate.team_id) and silence.active_at(at):
            shown = ", ".join(m.describe() for m in silence.matchers)
            text = f"silenced ({shown})"
            if silence.comment:
                text += f": {silence.comment}"
            return Suppression(SuppressionKind.SILENCE, silence.id, text)
    for rule in noise.inhibitions.matching(candidate.labels):
        if inhibited_by(rule, candidate, sources):
            return Suppression(
                SuppressionKind.INHIBITION, rule.id, f"inhibited by rule {rule.name!r}"
            )
    return None


def wants_sources(noise: NoiseInForce, candidates: Iterable[Candidate]) -> set[uuid.UUID | None]:
    """The teams (None: every team) whose firing alerts the inhibition check needs: only those
    of rules whose target side matches an alert of the batch."""
    teams: set[uuid.UUID | None] = set()
    for candidate in candidates:
        for rule in noise.inhibitions.matching(candidate.labels):
            if _in_scope(rule.team_id, candidate.team_id):
                teams.add(rule.team_id)
    return teams


# Each service of the batch with its name, once per maintenance window it has (or once).
_SERVICES_AND_WINDOWS = (
    select(
        Service.id.label("service_id"),
        Service.name,
        MaintenanceWindow.id,
        MaintenanceWindow.description,
        MaintenanceWindow.starts_at,
        MaintenanceWindow.ends_at,
        MaintenanceWindow.weekdays,
        MaintenanceWindow.start_time,
        MaintenanceWindow.duration_minutes,
        MaintenanceWindow.timezone,
    )
    .outerjoin(MaintenanceWindow, MaintenanceWindow.service_id == Service.id)
    .where(Service.id.in_(bindparam("ids", expanding=True)))
)


def window_rule(row: Any) -> WindowRule:
    """The pure form of a stored window (an ORM row, or a Core row of its columns)."""
    start_time = None
    if row.start_time:
        hours, minutes = row.start_time.split(":")
        start_time = time(int(hours), int(minutes))
    return WindowRule(
        id=row.id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        weekdays=tuple(row.weekdays or ()),
        start_time=start_time,
        duration=timedelta(minutes=row.duration_minutes) if row.duration_minutes else None,
        timezone=row.timezone or "UTC",
        description=row.description,
    )


async def load_noise(
    conn: Connection, *, service_ids: set[uuid.UUID], now: datetime
) -> NoiseInForce:
    """Silences active at `now`, every inhibition rule, the services' maintenance windows and
    names: two small statements per batch while no silence or rule changes (rulecache.py)."""
    rules = await rules_in_force(conn)
    noise = NoiseInForce(silences=rules.silences, inhibitions=rules.inhibitions)
    if service_ids:
        for row in await conn.execute(_SERVICES_AND_WINDOWS, {"ids": list(service_ids)}):
            noise.service_names[row.service_id] = row.name
            if row.id is not None:
                noise.windows.setdefault(row.service_id, []).append(window_rule(row))
    return noise


async def find_sources(conn: Connection, teams: set[uuid.UUID | None]) -> list[Source]:
    """Firing alerts of open or acknowledged incidents of these teams (None: all teams): the
    alerts that page now, and so may inhibit others."""
    if not teams:
        return []
    stmt = (
        select(
            Alert.tags,
            Alert.title,
            Alert.source,
            Alert.severity,
            Incident.team_id,
            Service.name.label("service_name"),
        )
        .join(Incident, Incident.id == Alert.incident_id)
        .outerjoin(Service, Service.id == Incident.service_id)
        .where(
            Incident.status.in_([IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED]),
            Alert.status == AlertStatus.FIRING,
        )
    )
    if None not in teams:
        stmt = stmt.where(Incident.team_id.in_([t for t in teams if t is not None]))
    sources = []
    for row in await conn.execute(stmt):
        labels = labels_of(
            tags=row.tags,
            title=row.title,
            source=row.source,
            severity=str(row.severity),
            service=row.service_name or "",
        )
        sources.append(Source(labels, row.team_id))
    return sources


@dataclass(frozen=True)
class Firing:
    """A firing, routed alert of a batch as ingest hands it over: its labels name its
    service, so they are made here, once the service names are read."""

    tags: Mapping[str, Any]
    title: str
    source: str
    severity: str
    team_id: uuid.UUID
    service_id: uuid.UUID | None


async def decide_noise(
    conn: Connection, batch: Sequence[Firing | None], *, now: datetime
) -> list[Suppression | None]:
    """For each alert of a firing batch (None: unrouted, never suppressed), why it opens no
    incident (maintenance, silence or inhibition, in that order), or None. Earlier alerts of
    the batch count as firing sources for inhibition, as do the alerts of open and
    acknowledged incidents. Reads what is in force (and, for inhibition, the sources) first,
    then decides each alert purely."""
    service_ids = {f.service_id for f in batch if f is not None and f.service_id is not None}
    noise = await load_noise(conn, service_ids=service_ids, now=now)
    decided: list[Suppression | None] = [None] * len(batch)
    if noise.empty:
        return decided
    candidates = [_candidate(f, noise) if f is not None else None for f in batch]
    routed = [c for c in candidates if c is not None]
    sources: list[Source] = []
    if noise.inhibitions:
        sources = await find_sources(conn, wants_sources(noise, routed))
        sources += [Source(c.labels, c.team_id) for c in routed]
    for n, candidate in enumerate(candidates):
        if candidate is not None:
            decided[n] = suppression_for(candidate, noise, sources, at=now)
    return decided


def _candidate(firing: Firing, noise: NoiseInForce) -> Candidate:
    service = noise.service_names.get(firing.service_id, "") if firing.service_id else ""
    labels = labels_of(
        tags=firing.tags,
        title=firing.title,
        source=firing.source,
        severity=firing.severity,
        service=service,
    )
    return Candidate(labels, firing.team_id, firing.service_id)
