"""The ingest pipeline: a payload's alerts and signals -> route -> dedup -> incident, timeline,
start timer, stored as one unit.

Every caller hands over a `Submission` (what one payload became: its alerts, its acknowledge
and resolve signals, and whatever else it must store with them); a single alert is a
submission of one, and a submission is stored in one transaction or not at all.

It runs in two parts so that SQLite's single writer is held as briefly as possible:
`prepare` does the reads (routing) on any connection, concurrently with other requests;
`commit_batch` does the writes of every submission in a batch inside the one transaction the
batcher shares between them, with a handful of statements per run of firing alerts rather than
per alert. Paging is not done here: a new incident gets a start timer due at once, and the
worker pages level 1 in its own transaction (DESIGN.md's pipeline), so ingest stays short.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from tocsin.alerts.models import Alert, AlertStatus
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.incidents.dedup import (
    DedupKey,
    Demand,
    find_active_incidents,
    join_incidents,
    place,
    transition_active,
)
from tocsin.incidents.lifecycle import Action
from tocsin.incidents.models import Incident
from tocsin.incidents.timeline import (
    NO_POLICY_NOTE,
    Actor,
    EventKind,
    TimelineEntry,
    append_events,
    append_to_timelines,
)
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.noise.decide import Firing, Suppression, SuppressionKind
from tocsin.noise.decide import decide_noise as decide_batch_noise
from tocsin.noise.grouping import (
    Wanted,
    find_finished_groups,
    find_resolvable_incidents,
    group_of,
    plan_groups,
)
from tocsin.notifications.dispatch import urgency_of
from tocsin.realtime.events import StreamEvent
from tocsin.routing.route import Route, route_alert
from tocsin.store.connection import Connection
from tocsin.timers.schedule import schedule_starts

log = logging.getLogger(__name__)

Event = tuple[StreamEvent, uuid.UUID]


@dataclass(frozen=True)
class PreparedAlert:
    integration: IntegrationInfo
    alert: NormalisedAlert
    fingerprint: str
    route: Route | None


@dataclass(frozen=True)
class IngestOutcome:
    alert_id: uuid.UUID
    incident_id: uuid.UUID | None
    deduplicated: bool
    # What the stream should announce once the transaction is committed.
    events: tuple[Event, ...] = ()
    # Why it opened no incident (maintenance, silence, inhibition), if it was suppressed.
    suppressed: Suppression | None = None


@dataclass(frozen=True)
class SignalIn:
    """Acknowledge or resolve whatever is active under a fingerprint (PagerDuty and Opsgenie
    events by dedup key)."""

    action: Action
    fingerprint: str
    note: str


# More rows a payload stores in the submission's transaction (change events, the delivery id
# its sender retries with); returns the incidents it touched. It may run twice (a failed
# shared transaction is retried alone), so it must not keep state of its own between runs.
Extra = Callable[[Connection, datetime], Awaitable[list[uuid.UUID]]]


@dataclass(frozen=True)
class Submission:
    """What one payload became, stored as one unit: its alerts in order, then its signals,
    then `extra`."""

    integration: IntegrationInfo
    alerts: tuple[PreparedAlert, ...] = ()
    signals: tuple[SignalIn, ...] = ()
    extra: Extra | None = None


@dataclass(frozen=True)
class SubmissionOutcome:
    alerts: tuple[IngestOutcome, ...] = ()
    # For each signal, the incidents it changed.
    signals: tuple[tuple[uuid.UUID, ...], ...] = ()
    extra: tuple[uuid.UUID, ...] = ()

    @property
    def events(self) -> tuple[Event, ...]:
        """What the stream should announce once the transaction is committed."""
        touched = [i for changed in self.signals for i in changed] + list(self.extra)
        return tuple(e for a in self.alerts for e in a.events) + tuple(
            (StreamEvent.INCIDENT_UPDATED, i) for i in touched
        )


async def prepare(
    conn: Connection, integration: IntegrationInfo, alert: NormalisedAlert
) -> PreparedAlert:
    """Compute the fingerprint and route (reads only)."""
    route = None
    if alert.status == AlertStatus.FIRING:
        route = await route_alert(conn, alert, integration)
    return PreparedAlert(integration, alert, fingerprint(alert), route)


def _alert_row(
    prepared: PreparedAlert,
    alert_id: uuid.UUID,
    *,
    incident_id: uuid.UUID | None,
    routed: bool,
    now: datetime,
    suppressed: Suppression | None = None,
) -> dict[str, Any]:
    alert = prepared.alert
    return {
        "suppressed_kind": suppressed.kind.value if suppressed else None,
        "suppressed_by": suppressed.id if suppressed else None,
        "suppression_reason": suppressed.reason[:1024] if suppressed else None,
        "id": alert_id,
        "integration_id": prepared.integration.id,
        "incident_id": incident_id,
        "fingerprint": prepared.fingerprint,
        "title": alert.title,
        "description": alert.description,
        "severity": alert.severity,
        "status": alert.status,
        "source": alert.source,
        "dedup_key": alert.dedup_key,
        "routing_key": alert.routing_key,
        "tags": alert.tags,
        "details": alert.details,
        "routed": routed,
        "received_at": now,
    }


def _opening(prepared: PreparedAlert, route: Route, *, now: datetime) -> dict[str, Any]:
    """The columns of the incident this alert would open, its urgency decided now (by the
    service's urgency, support hours at `now`, or the severity)."""
    alert = prepared.alert
    urgency = urgency_of(alert.severity, route.urgency, support_hours=route.support_hours, at=now)
    return {
        "title": alert.title,
        "description": alert.description,
        "priority": alert.severity,
        "urgency": urgency.value,
        "team_id": route.team_id,
        "escalation_policy_id": route.escalation_policy_id,
        "service_id": route.service_id,
    }


@dataclass(frozen=True)
class _Placed:
    """Where dedup put one firing alert of a batch."""

    prepared: PreparedAlert
    incident_id: uuid.UUID | None  # None: unrouted or suppressed
    created: bool = False  # this alert opened the incident
    suppressed: Suppression | None = None
    # It joined its group's incident (grouping, not dedup, put it there): which, and why.
    grouped: Suppression | None = None


# Built once: a statement object reused keeps its compiled form's cache key.
_INSERT_ALERTS = insert(Alert)


async def _store_placed(
    conn: Connection, placed: list[_Placed], *, now: datetime
) -> list[IngestOutcome]:
    """Write the alerts of a batch whose incidents are decided (opened or joined), their
    timeline entries and the start timers of new incidents: three or four statements
    whatever the batch size."""
    alert_rows: list[dict[str, Any]] = []
    entries: list[tuple[uuid.UUID, TimelineEntry]] = []
    starts: list[uuid.UUID] = []
    outcomes: list[IngestOutcome] = []
    for item in placed:
        prepared, incident_id = item.prepared, item.incident_id
        alert_id = uuid.uuid4()
        route = prepared.route
        alert_rows.append(
            _alert_row(
                prepared,
                alert_id,
                incident_id=incident_id,
                routed=route is not None,
                now=now,
                suppressed=item.suppressed or item.grouped,
            )
        )
        if item.suppressed is not None:
            log.info("alert %s suppressed: %s", alert_id, item.suppressed.reason)
            outcomes.append(
                IngestOutcome(alert_id, None, deduplicated=False, suppressed=item.suppressed)
            )
            continue
        if incident_id is None or route is None:
            log.info("alert %s matched no route; stored as unrouted", alert_id)
            outcomes.append(IngestOutcome(alert_id, None, deduplicated=False))
            continue
        actor = Actor.integration(prepared.integration.id)
        if not item.created:
            data = {"alert_id": str(alert_id)}
            if item.grouped is not None:
                data["grouped"] = item.grouped.reason
            entries.append((incident_id, TimelineEntry(EventKind.ALERT_ADDED, actor, data=data)))
            outcomes.append(
                IngestOutcome(
                    alert_id,
                    incident_id,
                    deduplicated=True,
                    events=((StreamEvent.ALERT_ADDED, incident_id),),
                    suppressed=item.grouped,
                )
            )
            continue
        entries.append(
            (
                incident_id,
                TimelineEntry(
                    EventKind.CREATED,
                    actor,
                    new_status="open",
                    data={
                        "alert_id": str(alert_id),
                        "routed_by": route.reason.value,
                        "service_id": str(route.service_id) if route.service_id else None,
                    },
                ),
            )
        )
        if route.escalation_policy_id is None:
            log.warning(
                "incident %s has no usable escalation policy: nobody will be paged", incident_id
            )
            entries.append(
                (
                    incident_id,
                    TimelineEntry(EventKind.NO_ESCALATION_POLICY, actor, note=NO_POLICY_NOTE),
                )
            )
        else:
            # Level 1 is paged by the worker at once (woken by this commit), in the
            # transaction that also schedules the timer for what comes next.
            starts.append(incident_id)
        outcomes.append(
            IngestOutcome(
                alert_id,
                incident_id,
                deduplicated=False,
                events=((StreamEvent.INCIDENT_CREATED, incident_id),),
            )
        )
    if alert_rows:
        await conn.execute(_INSERT_ALERTS, alert_rows)
    await append_to_timelines(conn, entries, now=now)
    await schedule_starts(conn, starts, now=now)
    return outcomes


async def _commit_firing_run(
    conn: Connection, run: list[PreparedAlert], *, now: datetime
) -> list[IngestOutcome]:
    """Decide and store firing alerts together: noise first, then grouping, then dedup, each
    for the whole run at once. The first alert of a fingerprint that opens an incident is its
    creator."""
    if not run:
        return []
    suppressed = await decide_noise(conn, run, now=now)
    counts: Counter[DedupKey] = Counter()
    first: dict[DedupKey, int] = {}
    for n, prepared in enumerate(run):
        if prepared.route is not None and suppressed[n] is None:
            key = (prepared.integration.id, prepared.fingerprint)
            counts[key] += 1
            first.setdefault(key, n)
    groups = _groups_of(run, first)
    plan = await plan_groups(conn, groups, now=now)

    def demand(key: DedupKey) -> Demand:
        prepared = run[first[key]]
        assert prepared.route is not None
        opening = _opening(prepared, prepared.route, now=now)
        if key in groups:
            opening["group_key"] = groups[key].group.key
        return Demand(
            integration_id=key[0],
            fingerprint=key[1],
            window=timedelta(minutes=prepared.integration.dedup_window_minutes),
            alerts=counts[key],
            opening=opening,
        )

    outcomes = await place(
        conn, [demand(k) for k in first if k not in plan.join and k not in plan.follow], now=now
    )
    # Alerts joining a group's incident (found, or opened by its leader in this run) skip
    # dedup; one whose incident was resolved in the meantime goes through dedup after all.
    joining: dict[DedupKey, tuple[uuid.UUID, bool]] = dict(plan.join)
    late: list[DedupKey] = []
    for key, leader in plan.follow.items():
        led = outcomes[leader]
        if led.created:
            joining[key] = (led.incident_id, False)
        else:
            late.append(key)
    joined = await join_incidents(
        conn, {k: (i, counts[k]) for k, (i, _) in joining.items()}, now=now
    )
    late += [k for k in joining if k not in joined]
    outcomes.update(await place(conn, [demand(k) for k in late], now=now))
    placed = []
    for n, prepared in enumerate(run):
        if prepared.route is None or suppressed[n] is not None:
            placed.append(_Placed(prepared, None, suppressed=suppressed[n]))
            continue
        key = (prepared.integration.id, prepared.fingerprint)
        if key in joined:
            group = groups[key].group
            reason = group.reason + (" (already in this incident)" if joining[key][1] else "")
            grouped = Suppression(SuppressionKind.GROUP, joined[key], reason)
            placed.append(_Placed(prepared, joined[key], grouped=grouped))
            continue
        outcome = outcomes[key]
        placed.append(_Placed(prepared, outcome.incident_id, outcome.created and first[key] == n))
    return await _store_placed(conn, placed, now=now)


def _groups_of(run: list[PreparedAlert], first: Mapping[DedupKey, int]) -> dict[DedupKey, Wanted]:
    """The group of each fingerprint of the run whose service (or integration) groups, in
    run order; a fingerprint's first alert decides its group."""
    groups = {}
    for key, n in first.items():
        prepared = run[n]
        assert prepared.route is not None
        group = group_of(
            route=prepared.route,
            tags=prepared.alert.tags,
            group_by=prepared.integration.group_by,
            window_seconds=prepared.integration.group_window_seconds,
        )
        if group is not None:
            window = timedelta(minutes=prepared.integration.dedup_window_minutes)
            groups[key] = Wanted(group, window)
    return groups


async def decide_noise(
    conn: Connection, run: list[PreparedAlert], *, now: datetime
) -> list[Suppression | None]:
    """For each alert of a firing run, why it opens no incident (maintenance, silence or
    inhibition), or None: noise/decide.py decides, for the whole run at once."""
    return await decide_batch_noise(conn, [_firing(p) for p in run], now=now)


def _firing(prepared: PreparedAlert) -> Firing | None:
    route, alert = prepared.route, prepared.alert
    if route is None:
        return None
    return Firing(
        tags=alert.tags,
        title=alert.title,
        source=alert.source,
        severity=alert.severity.value,
        team_id=route.team_id,
        service_id=route.service_id,
    )


async def _commit_resolved(
    conn: Connection, prepared: PreparedAlert, now: datetime
) -> IngestOutcome:
    integration = prepared.integration
    found = await find_resolvable_incidents(conn, integration.id, prepared.fingerprint)
    grouped = [incident_id for incident_id, group_key in found if group_key is not None]
    single = [incident_id for incident_id, group_key in found if group_key is None]
    # A grouped incident holding the fingerprint takes the receipt: its alert list then
    # shows this alert resolved.
    target = next(iter(grouped + single), None)
    alert_id = uuid.uuid4()
    row = _alert_row(prepared, alert_id, incident_id=target, routed=target is not None, now=now)
    await conn.execute(_INSERT_ALERTS, [row])
    if target is None:
        return IngestOutcome(alert_id, None, deduplicated=False)
    await conn.execute(
        update(Incident)
        .where(Incident.id == target)
        .values(alert_count=Incident.alert_count + 1, updated_at=now)
    )
    actor = Actor.integration(integration.id)
    await append_events(
        conn,
        target,
        [TimelineEntry(EventKind.ALERT_ADDED, actor, data={"alert_id": str(alert_id)})],
        now=now,
    )
    events: list[Event] = [(StreamEvent.ALERT_ADDED, target)]
    if integration.auto_resolve:
        # The problem is gone: every active incident of this fingerprint goes, and a grouped
        # one once the last of its alerts has resolved.
        changed = await transition_active(
            conn,
            single,
            Action.RESOLVE,
            actor=actor,
            note="resolved by the monitoring tool",
            now=now,
        )
        changed += await transition_active(
            conn,
            await find_finished_groups(conn, grouped),
            Action.RESOLVE,
            actor=actor,
            note="every alert of the incident has resolved",
            now=now,
        )
        events += [(StreamEvent.INCIDENT_UPDATED, i) for i in changed]
    return IngestOutcome(alert_id, target, deduplicated=True, events=tuple(events))


async def _apply_signal(
    conn: Connection, integration: IntegrationInfo, signal: SignalIn, now: datetime
) -> tuple[uuid.UUID, ...]:
    incident_ids = await find_active_incidents(conn, integration.id, signal.fingerprint)
    changed = await transition_active(
        conn,
        incident_ids,
        signal.action,
        actor=Actor.integration(integration.id),
        note=signal.note,
        now=now,
    )
    return tuple(changed)


async def commit_batch(
    conn: Connection, batch: list[Submission], *, now: datetime
) -> list[SubmissionOutcome]:
    """Store submissions in order, in the caller's transaction. Consecutive firing alerts
    (across submissions too) are deduplicated and stored together; a resolved alert, a signal
    or an extra is applied where it falls, so a firing-then-resolved pair in one batch ends
    resolved. The caller commits, or rolls back everything on an exception."""
    alerts: list[list[IngestOutcome | None]] = [[None] * len(s.alerts) for s in batch]
    signals: list[list[tuple[uuid.UUID, ...]]] = [[] for _ in batch]
    extras: list[list[uuid.UUID]] = [[] for _ in batch]
    run: list[PreparedAlert] = []
    run_slots: list[tuple[int, int]] = []

    async def flush() -> None:
        for (s, a), outcome in zip(
            run_slots, await _commit_firing_run(conn, run, now=now), strict=True
        ):
            alerts[s][a] = outcome
        run.clear()
        run_slots.clear()

    for s, submission in enumerate(batch):
        for a, prepared in enumerate(submission.alerts):
            if prepared.alert.status != AlertStatus.RESOLVED:
                run.append(prepared)
                run_slots.append((s, a))
                continue
            await flush()
            alerts[s][a] = await _commit_resolved(conn, prepared, now)
        if submission.signals or submission.extra is not None:
            await flush()
        for signal in submission.signals:
            signals[s].append(await _apply_signal(conn, submission.integration, signal, now))
        if submission.extra is not None:
            extras[s] = await submission.extra(conn, now)
    await flush()
    outcomes = []
    for s in range(len(batch)):
        stored = tuple(a for a in alerts[s] if a is not None)
        outcomes.append(SubmissionOutcome(stored, tuple(signals[s]), tuple(extras[s])))
    return outcomes


async def commit_submission(
    conn: Connection, submission: Submission, *, now: datetime
) -> SubmissionOutcome:
    """Store one submission in the caller's transaction (a batch of one)."""
    return (await commit_batch(conn, [submission], now=now))[0]


async def commit_alert(
    conn: Connection, prepared: PreparedAlert, *, now: datetime
) -> IngestOutcome:
    """Store one alert and everything it causes in the caller's transaction."""
    outcome = await commit_submission(
        conn, Submission(prepared.integration, alerts=(prepared,)), now=now
    )
    return outcome.alerts[0]
