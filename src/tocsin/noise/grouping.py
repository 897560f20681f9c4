"""Grouping: alerts of one service with equal values of its `group_by` tags join one incident
while that incident is active and younger than the group window, whatever their fingerprints.

In the pipeline it comes after maintenance, silences and inhibition, and before dedup:
`group_of` is the pure answer for one alert (which group, if its service or integration
groups at all); `plan_groups` reads, once per batch, the active incidents of the batch's
groups and the active grouped incidents already holding the batch's fingerprints, and says
for each fingerprint whether it joins one of them, follows the first fingerprint of its group
in the batch, or goes on to dedup (and, opening an incident, opens its group's).

Two API processes on PostgreSQL that open the first incident of one group at the same moment
may open two: no unique index decides between them (fingerprint dedup still does). Later
alerts of the group join the newest.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, union

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.incidents.dedup import DedupKey, joins_existing
from tocsin.incidents.detail import load_incident_alerts
from tocsin.incidents.lifecycle import ACTIVE_STATUSES
from tocsin.incidents.models import Incident
from tocsin.routing.route import Route
from tocsin.store.connection import Connection

DEFAULT_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Group:
    """The group an alert belongs to: its service with the values of the group_by tags."""

    key: str
    window: timedelta
    # For people: alertname='HighCPU', cluster='eu-1'
    description: str

    @property
    def reason(self) -> str:
        return f"grouped by {self.description}"


def group_of(
    *,
    route: Route,
    tags: Mapping[str, Any],
    group_by: tuple[str, ...] | None = None,
    window_seconds: int | None = None,
) -> Group | None:
    """The alert's group, or None when it is not grouped: neither its integration's setting
    (`group_by`, `window_seconds`: they override the service's when set) nor its service's
    names tags, or it has no service. A tag the alert lacks counts as the empty value, as in
    Alertmanager."""
    if route.service_id is None:
        return None
    keys = group_by if group_by is not None else route.group_by
    if not keys:
        return None
    seconds = window_seconds or route.group_window_seconds
    values = [str(tags.get(name, "")) for name in keys]
    raw = json.dumps([str(route.service_id), list(keys), values], separators=(",", ":"))
    return Group(
        key="group:" + hashlib.sha256(raw.encode()).hexdigest(),
        window=timedelta(seconds=seconds or DEFAULT_WINDOW_SECONDS),
        description=", ".join(
            f"{name}={value!r}" for name, value in zip(keys, values, strict=True)
        ),
    )


def merged_key(incident_id: uuid.UUID) -> str:
    """The group key of an incident that merge or split gave alerts of other fingerprints:
    no alert's group has it, so nothing joins by group, but the incident's own alerts still
    find it (and it resolves when they all have)."""
    return f"held:{incident_id}"


@dataclass(frozen=True)
class Wanted:
    """A fingerprint of the batch whose service groups alerts."""

    group: Group
    # The integration's dedup window: a fingerprint already in a grouped incident joins it
    # again within this, as dedup would.
    dedup_window: timedelta


@dataclass(frozen=True)
class GroupPlan:
    # Fingerprint -> the active incident it joins, and whether it was already in it (dedup
    # inside the group) rather than joining by its group.
    join: dict[DedupKey, tuple[uuid.UUID, bool]] = field(default_factory=dict)
    # Group key -> the first fingerprint of the batch in a group with no incident to join:
    # it goes on to dedup, and an incident it opens is the group's.
    leaders: dict[str, DedupKey] = field(default_factory=dict)
    # Fingerprint -> its group's leader in this batch, whose incident it joins.
    follow: dict[DedupKey, DedupKey] = field(default_factory=dict)


_GROUP_INCIDENTS = (
    select(Incident.id, Incident.group_key, Incident.created_at)
    .where(
        Incident.group_key.in_(bindparam("keys", expanding=True)),
        Incident.status.in_(ACTIVE_STATUSES),
    )
    .order_by(Incident.created_at)
)

# Driven from the few active grouped incidents (by ix_incidents_group_key_status), then their
# alerts by incident: the fingerprint's whole history is never read.
_HOLDING = (
    select(Alert.integration_id, Alert.fingerprint, Incident.id, Incident.created_at)
    .distinct()
    .join(Alert, Alert.incident_id == Incident.id)
    .where(
        Incident.group_key.is_not(None),
        Incident.status.in_(ACTIVE_STATUSES),
        Alert.fingerprint.in_(bindparam("fingerprints", expanding=True)),
        Alert.integration_id.in_(bindparam("integrations", expanding=True)),
    )
    .order_by(Incident.created_at)
)


async def plan_groups(
    conn: Connection, wanted: Mapping[DedupKey, Wanted], *, now: datetime
) -> GroupPlan:
    """Where each fingerprint of `wanted` (in batch order) goes: two queries per batch."""
    plan = GroupPlan()
    if not wanted:
        return plan
    newest: dict[str, tuple[uuid.UUID, datetime]] = {}
    rows = await conn.execute(
        _GROUP_INCIDENTS, {"keys": list({w.group.key for w in wanted.values()})}
    )
    for row in rows:
        newest[row.group_key] = (row.id, row.created_at)
    holding: dict[DedupKey, tuple[uuid.UUID, datetime]] = {}
    rows = await conn.execute(
        _HOLDING,
        {
            "fingerprints": list({fingerprint for _, fingerprint in wanted}),
            "integrations": list({integration for integration, _ in wanted}),
        },
    )
    for row in rows:
        holding[(row.integration_id, row.fingerprint)] = (row.id, row.created_at)
    for key, want in wanted.items():
        held = holding.get(key)
        if held is not None and joins_existing(held[1], now=now, window=want.dedup_window):
            plan.join[key] = (held[0], True)
            continue
        found = newest.get(want.group.key)
        if found is not None and joins_existing(found[1], now=now, window=want.group.window):
            plan.join[key] = (found[0], False)
            continue
        leader = plan.leaders.setdefault(want.group.key, key)
        if leader != key:
            plan.follow[key] = leader
    return plan


async def find_resolvable_incidents(
    conn: Connection, integration_id: uuid.UUID, fingerprint: str
) -> list[tuple[uuid.UUID, str | None]]:
    """The active incidents a resolved alert of this fingerprint concerns, newest first, each
    with its group key: those opened for the fingerprint, and grouped ones holding an alert
    of it. One query."""
    opened = select(Incident.id, Incident.group_key, Incident.created_at).where(
        Incident.fingerprint == fingerprint,
        Incident.integration_id == integration_id,
        Incident.status.in_(ACTIVE_STATUSES),
    )
    holding = select(Incident.id, Incident.group_key, Incident.created_at).where(
        Incident.group_key.is_not(None),
        Incident.status.in_(ACTIVE_STATUSES),
        select(Alert.id)
        .where(
            Alert.incident_id == Incident.id,
            Alert.integration_id == integration_id,
            Alert.fingerprint == fingerprint,
        )
        .exists(),
    )
    both = union(opened, holding).subquery()
    rows = await conn.execute(
        select(both.c.id, both.c.group_key).order_by(both.c.created_at.desc())
    )
    return [(row.id, row.group_key) for row in rows]


async def find_finished_groups(conn: Connection, incident_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of these incidents whose every alert has resolved."""
    listed = await load_incident_alerts(conn, incident_ids)
    return [
        incident_id
        for incident_id, alerts in listed.items()
        if alerts and all(a.status == AlertStatus.RESOLVED for a in alerts)
    ]
