"""Route an alert to (team, escalation policy, service): service first, then team tags.

1. The alert's routing key names a service that is not archived.
2. Otherwise the integration's default service, if set and not archived.
3. Otherwise team tags: the team with the most tags matching the alert's tags wins; ties go
   to the team whose name sorts first, then the lower id, so the answer never depends on
   row order. No service is set.
4. Otherwise the alert is unrouted (None): stored, listed and counted, never dropped.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select, tuple_
from sqlalchemy.orm import aliased

from tocsin.alerts.normalised import NormalisedAlert
from tocsin.catalog.models import Service, ServiceStatus, ServiceUrgency
from tocsin.catalog.support_hours import SupportHours
from tocsin.catalog.support_hours import from_stored as support_hours_from_stored
from tocsin.escalation.models import EscalationPolicy
from tocsin.integrations.lookup import IntegrationInfo
from tocsin.store.connection import Connection
from tocsin.store.quickreads import driver_ready, kept_first
from tocsin.teams.models import Team, TeamTag

log = logging.getLogger(__name__)


class RouteReason(enum.StrEnum):
    ROUTING_KEY = "routing_key"
    DEFAULT_SERVICE = "default_service"
    TEAM_TAGS = "team_tags"


@dataclass(frozen=True)
class Route:
    team_id: uuid.UUID
    service_id: uuid.UUID | None
    escalation_policy_id: uuid.UUID | None
    reason: RouteReason
    # The service's grouping (noise/grouping.py): tag names and window; none without a service.
    group_by: tuple[str, ...] = ()
    group_window_seconds: int = 0
    # The service's urgency and support hours (catalog/support_hours.py), which decide a new
    # incident's urgency; none without a service.
    urgency: ServiceUrgency = ServiceUrgency.SEVERITY_BASED
    support_hours: SupportHours | None = None


_service_policy = aliased(EscalationPolicy)
_team_default = aliased(EscalationPolicy)

# A usable service with its own policy (if active) and its team's default policy (if active),
# in one round trip.
_SERVICE_ROUTE = (
    select(
        Service.id,
        Service.team_id,
        Service.escalation_policy_id,
        Service.group_by,
        Service.group_window_seconds,
        Service.urgency,
        Service.support_hours,
        _service_policy.id.label("service_policy_active_id"),
        _team_default.id.label("team_default_id"),
    )
    .outerjoin(
        _service_policy,
        and_(
            _service_policy.id == Service.escalation_policy_id,
            _service_policy.is_active.is_(True),
        ),
    )
    .outerjoin(
        _team_default,
        and_(
            _team_default.team_id == Service.team_id,
            _team_default.is_default.is_(True),
            _team_default.is_active.is_(True),
        ),
    )
    .where(Service.status != ServiceStatus.ARCHIVED)
)


# Built once: every alert runs one of them, and a statement object reused keeps its cache key.
# What they find is kept per process while the lookups stamp holds (tocsin/store/stamp.py):
# a service or policy changed anywhere is seen by the next alert.
_BY_ROUTING_KEY = driver_ready(
    _SERVICE_ROUTE.where(Service.routing_key == bindparam("routing_key")), kept=True
)
_BY_SERVICE_ID = driver_ready(
    _SERVICE_ROUTE.where(Service.id == bindparam("service_id")), kept=True
)


@dataclass(frozen=True)
class _ServiceRoute:
    """A service's route as read, and the policy it names if that one is inactive or gone."""

    service_id: uuid.UUID
    team_id: uuid.UUID
    escalation_policy_id: uuid.UUID | None
    unusable_policy_id: uuid.UUID | None
    group_by: tuple[str, ...]
    group_window_seconds: int
    urgency: ServiceUrgency
    support_hours: SupportHours | None


def _service_route(row: Any) -> _ServiceRoute:
    policy_id = row.service_policy_active_id
    unusable = None
    if policy_id is None:
        unusable = row.escalation_policy_id
        policy_id = row.team_default_id
    return _ServiceRoute(
        service_id=row.id,
        team_id=row.team_id,
        escalation_policy_id=policy_id,
        unusable_policy_id=unusable,
        group_by=tuple(row.group_by or ()),
        group_window_seconds=row.group_window_seconds,
        urgency=ServiceUrgency(row.urgency),
        support_hours=support_hours_from_stored(row.support_hours),
    )


async def _route_via_service(
    conn: Connection, *, routing_key: str | None, service_id: uuid.UUID | None
) -> Route | None:
    params: dict[str, object]
    if routing_key is not None:
        stmt, params = _BY_ROUTING_KEY, {"routing_key": routing_key}
        reason = RouteReason.ROUTING_KEY
    elif service_id is not None:
        stmt, params = _BY_SERVICE_ID, {"service_id": service_id}
        reason = RouteReason.DEFAULT_SERVICE
    else:
        return None
    found = await kept_first(conn, stmt, params, _service_route)
    if found is None:
        return None
    if found.unusable_policy_id is not None:
        log.warning(
            "service %s names escalation policy %s, which is inactive or gone; "
            "using the team's default policy",
            found.service_id,
            found.unusable_policy_id,
        )
    return Route(
        team_id=found.team_id,
        service_id=found.service_id,
        escalation_policy_id=found.escalation_policy_id,
        reason=reason,
        group_by=found.group_by,
        group_window_seconds=found.group_window_seconds,
        urgency=found.urgency,
        support_hours=found.support_hours,
    )


async def find_team_default_policy(conn: Connection, team_id: uuid.UUID) -> uuid.UUID | None:
    result = await conn.execute(
        select(EscalationPolicy.id).where(
            EscalationPolicy.team_id == team_id,
            EscalationPolicy.is_default.is_(True),
            EscalationPolicy.is_active.is_(True),
        )
    )
    return result.scalar_one_or_none()


async def _route_via_tags(conn: Connection, tags: dict[str, str]) -> Route | None:
    if not tags:
        return None
    matches = func.count(TeamTag.id).label("matches")
    stmt = (
        select(Team.id, matches)
        .join(TeamTag, TeamTag.team_id == Team.id)
        .where(tuple_(TeamTag.key, TeamTag.value).in_(list(tags.items())))
        .group_by(Team.id, Team.name)
        .order_by(matches.desc(), Team.name, Team.id)
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return Route(
        team_id=row.id,
        service_id=None,
        escalation_policy_id=await find_team_default_policy(conn, row.id),
        reason=RouteReason.TEAM_TAGS,
    )


async def route_alert(
    conn: Connection, alert: NormalisedAlert, integration: IntegrationInfo
) -> Route | None:
    """Where this alert goes, or None when no rule matches."""
    if alert.routing_key is not None:
        route = await _route_via_service(conn, routing_key=alert.routing_key, service_id=None)
        if route is not None:
            return route
    if integration.default_service_id is not None:
        route = await _route_via_service(
            conn, routing_key=None, service_id=integration.default_service_id
        )
        if route is not None:
            return route
    return await _route_via_tags(conn, alert.tags)
