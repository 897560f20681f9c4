"""Dry run: what an alert would do at a given instant, changing nothing.

It goes down the real path with the real functions: the integration's adapter maps the
payload, `prepare` fingerprints and routes it, the dedup window rule decides whether it joins
an open incident, and the paging plan is `resolve_for_reach` + `reach` applied level after level,
each at the instant the engine would reach it, assuming nobody acknowledges. Only the writes
are left out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tocsin.alerts.ingest import PreparedAlert, decide_noise, prepare
from tocsin.alerts.models import AlertStatus
from tocsin.auth.accounts import Principal
from tocsin.auth.permissions import require_team_reader, visible_team_ids
from tocsin.config import Settings
from tocsin.errors import InvalidInput
from tocsin.escalation.engine import resolve_for_reach
from tocsin.escalation.plan import FIRST, Position, reach
from tocsin.escalation.snapshot import PolicySnapshot, load_policy_snapshot
from tocsin.escalation.targets import Recipient
from tocsin.incidents.dedup import find_dedup_incident, joins_existing
from tocsin.incidents.models import Incident
from tocsin.integrations.adapters.base import Inbound, PayloadForbidden, PayloadRejected
from tocsin.integrations.adapters.registry import adapter_for
from tocsin.integrations.lookup import find_integration
from tocsin.noise.decide import Suppression, SuppressionKind
from tocsin.noise.grouping import Wanted, group_of, plan_groups
from tocsin.notifications.dispatch import urgency_of
from tocsin.notifications.models import Urgency
from tocsin.routing.route import Route


@dataclass(frozen=True)
class PlanStep:
    """One moment of the plan: a level paged, a level skipped, or escalation exhausted."""

    at: datetime
    action: str  # "page" | "skip" | "exhausted"
    position: Position | None
    recipients: tuple[Recipient, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class AlertSimulation:
    title: str
    status: AlertStatus
    fingerprint: str
    route: Route | None
    joins_incident_id: uuid.UUID | None
    policy: PolicySnapshot | None
    plan: tuple[PlanStep, ...]
    # It would join an open incident of a team the caller may not see: not named.
    joins_hidden_incident: bool = False
    # It would open no incident: the maintenance window, silence or inhibition rule, and why;
    # or (kind group) the incident its group would put it in.
    suppressed: Suppression | None = None
    # The urgency of the incident it would open (by the service's urgency and support hours
    # at `at`, or the severity); None when it would open none.
    urgency: Urgency | None = None


@dataclass(frozen=True)
class Simulation:
    at: datetime
    alerts: tuple[AlertSimulation, ...]
    ignored: tuple[str, ...] = field(default_factory=tuple)


async def plan_paging(
    conn: AsyncConnection, snapshot: PolicySnapshot, *, team_id: uuid.UUID, at: datetime
) -> tuple[PlanStep, ...]:
    """Every page the engine would send for an incident opened at `at` that nobody
    acknowledges, level by level and cycle by cycle, each resolved at its own instant."""
    steps: list[PlanStep] = []
    now, start = at, FIRST
    # reach() always moves forward and stops after repeat_count cycles, so this ends.
    while True:
        resolved = await resolve_for_reach(conn, snapshot, start, team_id=team_id, at=now)
        advance = reach(snapshot, start, resolved, now=now)
        steps.extend(PlanStep(now, "skip", s.at, reason=s.reason) for s in advance.skipped)
        if advance.paged is not None:
            steps.append(PlanStep(now, "page", advance.paged, advance.recipients))
        if advance.exhausted or advance.timer_at is None or advance.timer_target is None:
            steps.append(PlanStep(now, "exhausted", None, reason="every cycle was tried"))
            return tuple(steps)
        now, start = advance.timer_at, advance.timer_target


async def simulate(
    conn: AsyncConnection,
    *,
    integration_id: uuid.UUID,
    payload: object,
    at: datetime,
    settings: Settings,
    visible_teams: set[uuid.UUID] | None,
) -> Simulation:
    """What `payload`, sent to the integration at `at`, would route to and page. An open
    incident it would join is named only if its team is in `visible_teams` (None: all).
    Nothing is stored and nothing is sent anywhere: the adapter maps it as a dry run."""
    integration = await find_integration(conn, integration_id)
    if integration is None:
        raise InvalidInput(f"integration {integration_id} does not exist", field="integration_id")
    try:
        adapter = adapter_for(integration.type)
    except KeyError:
        raise InvalidInput(
            f"{integration.type.value} integrations take no JSON payload to simulate",
            field="integration_id",
        ) from None
    try:
        options = adapter.options_model.model_validate(integration.options)
    except ValidationError:
        options = adapter.options_model()
    inbound = Inbound(
        body=orjson.dumps(payload),
        headers={"content-type": "application/json"},
        query={},
        now=at,
        dry_run=True,
    )
    try:
        mapped = await adapter.map(inbound, options, settings)
    except PayloadRejected as exc:
        problem = exc.problems[0]
        loc = [str(part) for part in problem.loc if part != "body"]
        raise InvalidInput(problem.msg, field=".".join(["payload", *loc])) from exc
    except PayloadForbidden as exc:
        raise InvalidInput(
            f"the integration would refuse this payload: {exc}", field="payload"
        ) from exc
    results = []
    for item in mapped.alerts:
        prepared = await prepare(conn, integration, item.alert)
        joins: uuid.UUID | None = None
        hidden = False
        snapshot: PolicySnapshot | None = None
        plan: tuple[PlanStep, ...] = ()
        suppressed = None
        urgency: Urgency | None = None
        if prepared.route is not None:
            suppressed = (await decide_noise(conn, [prepared], now=at))[0]
        if prepared.route is not None and suppressed is None:
            # Grouping first, then dedup, as ingest decides.
            suppressed = await _grouped(conn, prepared, at=at)
            found = suppressed.id if suppressed is not None else None
            existing = await find_dedup_incident(conn, integration.id, prepared.fingerprint)
            window = timedelta(minutes=integration.dedup_window_minutes)
            if (
                found is None
                and existing is not None
                and joins_existing(existing[1], now=at, window=window)
            ):
                found = existing[0]
            if found is not None:
                team_id = await _team_of(conn, found)
                if visible_teams is None or team_id in visible_teams:
                    joins = found
                else:
                    hidden = True
                    suppressed = None  # it would name the incident
            else:
                route = prepared.route
                urgency = urgency_of(
                    item.alert.severity, route.urgency, support_hours=route.support_hours, at=at
                )
            if found is None and prepared.route.escalation_policy_id is not None:
                snapshot = await load_policy_snapshot(conn, prepared.route.escalation_policy_id)
                if snapshot is not None:
                    plan = await plan_paging(conn, snapshot, team_id=prepared.route.team_id, at=at)
        results.append(
            AlertSimulation(
                title=item.alert.title,
                status=item.alert.status,
                fingerprint=prepared.fingerprint,
                route=prepared.route,
                joins_incident_id=joins,
                policy=snapshot,
                plan=plan,
                joins_hidden_incident=hidden,
                suppressed=suppressed,
                urgency=urgency,
            )
        )
    return Simulation(at=at, alerts=tuple(results), ignored=tuple(mapped.ignored))


async def _grouped(
    conn: AsyncConnection, prepared: PreparedAlert, *, at: datetime
) -> Suppression | None:
    """The incident its group would put the alert in, as ingest decides it, if any."""
    assert prepared.route is not None
    integration = prepared.integration
    group = group_of(
        route=prepared.route,
        tags=prepared.alert.tags,
        group_by=integration.group_by,
        window_seconds=integration.group_window_seconds,
    )
    if group is None:
        return None
    key = (integration.id, prepared.fingerprint)
    window = timedelta(minutes=integration.dedup_window_minutes)
    plan = await plan_groups(conn, {key: Wanted(group, window)}, now=at)
    if key not in plan.join:
        return None
    incident_id, held = plan.join[key]
    reason = group.reason + (" (already in this incident)" if held else "")
    return Suppression(SuppressionKind.GROUP, incident_id, reason)


async def simulate_as(
    session: AsyncSession,
    conn: AsyncConnection,
    principal: Principal,
    *,
    integration_id: uuid.UUID,
    payload: object,
    at: datetime,
    settings: Settings,
) -> Simulation:
    """`simulate` as `principal` may see it: Forbidden unless they may read every team the
    payload routes to; an open incident of another team is not named."""
    visible = await visible_team_ids(session, principal)
    result = await simulate(
        conn,
        integration_id=integration_id,
        payload=payload,
        at=at,
        settings=settings,
        visible_teams=visible,
    )
    for alert in result.alerts:
        if alert.route is not None:
            await require_team_reader(session, principal, alert.route.team_id)
    return result


async def _team_of(conn: AsyncConnection, incident_id: uuid.UUID) -> uuid.UUID | None:
    return (
        await conn.execute(select(Incident.team_id).where(Incident.id == incident_id))
    ).scalar_one_or_none()
