"""The service catalog: registering, changing and removing services, keeping each one's
routing key unique and its escalation policy one of its own team's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.catalog.models import Service, ServiceStatus, ServiceUrgency
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.escalation.models import EscalationPolicy
from tocsin.incidents.models import Incident
from tocsin.integrations.models import Integration
from tocsin.store.pages import newest_first
from tocsin.teams.models import Team

if TYPE_CHECKING:
    from tocsin.catalog.schemas import ServiceCreate


class ServiceNotFound(NotFound):
    def __init__(self, service_id: uuid.UUID) -> None:
        super().__init__(f"service {service_id} not found")


class RoutingKeyTaken(Conflict):
    def __init__(self, routing_key: str) -> None:
        super().__init__(f"another service already has the routing key {routing_key!r}")


class ServiceInUse(Conflict):
    """Incidents or integrations refer to the service, so it can only be archived."""

    def __init__(self, service_id: uuid.UUID, *, incidents: int, integrations: list[str]) -> None:
        reasons = []
        if incidents:
            reasons.append(f"{incidents} incidents refer to it")
        if integrations:
            names = ", ".join(repr(name) for name in integrations)
            reasons.append(f"integrations {names} send to it by default")
        super().__init__(
            f"service {service_id} is in use ({'; '.join(reasons)}); "
            'archive it instead with PATCH {"status": "archived"}'
        )
        self.incidents = incidents
        self.integrations = integrations


async def find_service(session: AsyncSession, service_id: uuid.UUID) -> Service | None:
    return await session.get(Service, service_id)


async def list_services(
    session: AsyncSession,
    *,
    status: ServiceStatus | None = None,
    team_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Service], str | None]:
    """One page of services, newest first (archived ones too unless filtered by status)."""
    stmt = select(Service)
    if status is not None:
        stmt = stmt.where(Service.status == status)
    if team_id is not None:
        stmt = stmt.where(Service.team_id == team_id)
    return await newest_first(
        session, stmt, created=Service.created_at, row_id=Service.id, limit=limit, cursor=cursor
    )


async def _refuse_taken_routing_key(
    session: AsyncSession, routing_key: str, *, except_id: uuid.UUID | None = None
) -> None:
    stmt = select(Service.id).where(Service.routing_key == routing_key)
    if except_id is not None:
        stmt = stmt.where(Service.id != except_id)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise RoutingKeyTaken(routing_key)


async def _refuse_unknown_team(session: AsyncSession, team_id: uuid.UUID) -> None:
    if await session.get(Team, team_id) is None:
        raise InvalidInput(f"team {team_id} does not exist", field="team_id")


async def _refuse_foreign_policy(
    session: AsyncSession, *, policy_id: uuid.UUID, team_id: uuid.UUID
) -> None:
    """The policy must exist and belong to the service's team: paging another team's people
    for this service would bypass that team's own configuration."""
    owner = (
        await session.execute(
            select(EscalationPolicy.team_id).where(EscalationPolicy.id == policy_id)
        )
    ).scalar_one_or_none()
    if owner is None:
        raise InvalidInput(
            f"escalation policy {policy_id} does not exist", field="escalation_policy_id"
        )
    if owner != team_id:
        raise InvalidInput(
            f"escalation policy {policy_id} belongs to another team than the service",
            field="escalation_policy_id",
        )


async def register_service(
    session: AsyncSession,
    *,
    name: str,
    description: str,
    routing_key: str,
    team_id: uuid.UUID,
    escalation_policy_id: uuid.UUID | None,
    status: ServiceStatus,
    urgency: ServiceUrgency = ServiceUrgency.SEVERITY_BASED,
    group_by: list[str] | None = None,
    group_window_seconds: int = 300,
    support_hours: dict[str, Any] | None = None,
    now: datetime,
) -> Service:
    """A new service. Unknown team or unfit policy: InvalidInput; taken key: Conflict."""
    await _refuse_unknown_team(session, team_id)
    if escalation_policy_id is not None:
        await _refuse_foreign_policy(session, policy_id=escalation_policy_id, team_id=team_id)
    await _refuse_taken_routing_key(session, routing_key)
    service = Service(
        name=name,
        description=description,
        routing_key=routing_key,
        team_id=team_id,
        escalation_policy_id=escalation_policy_id,
        status=status,
        urgency=urgency,
        group_by=list(group_by or []),
        group_window_seconds=group_window_seconds,
        support_hours=support_hours,
        created_at=now,
        updated_at=now,
    )
    session.add(service)
    await session.flush()
    return service


async def register_service_from_body(
    session: AsyncSession, body: ServiceCreate, *, now: datetime
) -> Service:
    """register_service with what a create body asks for (the API's, or the page's form)."""
    return await register_service(
        session,
        name=body.name,
        description=body.description,
        routing_key=body.routing_key,
        team_id=body.team_id,
        escalation_policy_id=body.escalation_policy_id,
        status=body.status,
        urgency=body.urgency,
        group_by=body.group_by,
        group_window_seconds=body.group_window_seconds,
        support_hours=body.support_hours.model_dump() if body.support_hours else None,
        now=now,
    )


async def change_service(
    session: AsyncSession, service: Service, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply the changed fields. Moving the service to another team needs a policy of that
    team (or none), whether the policy is sent along or already set."""
    team_id: uuid.UUID = changes.get("team_id", service.team_id)
    policy_id: uuid.UUID | None = changes.get("escalation_policy_id", service.escalation_policy_id)
    if team_id != service.team_id:
        await _refuse_unknown_team(session, team_id)
    if policy_id is not None and (
        team_id != service.team_id or policy_id != service.escalation_policy_id
    ):
        await _refuse_foreign_policy(session, policy_id=policy_id, team_id=team_id)
    routing_key = changes.get("routing_key")
    if routing_key is not None and routing_key != service.routing_key:
        await _refuse_taken_routing_key(session, routing_key, except_id=service.id)
    urgency = changes.get("urgency", service.urgency)
    hours = changes.get("support_hours", service.support_hours)
    if urgency == ServiceUrgency.SUPPORT_HOURS and not hours:
        raise InvalidInput("needed when urgency is support_hours", field="support_hours")
    for name, value in changes.items():
        setattr(service, name, value)
    service.updated_at = now
    await session.flush()


async def delete_service(session: AsyncSession, service: Service) -> None:
    """Delete a service nothing refers to. Incidents keep their history by pointing at their
    service, and integrations send to their default one, so while either refers to it the
    answer is ServiceInUse and archiving is the way out."""
    incidents = (
        await session.execute(select(func.count()).where(Incident.service_id == service.id))
    ).scalar_one()
    integrations = list(
        (
            await session.execute(
                select(Integration.name)
                .where(Integration.default_service_id == service.id)
                .order_by(Integration.name)
            )
        ).scalars()
    )
    if incidents or integrations:
        raise ServiceInUse(service.id, incidents=incidents, integrations=integrations)
    await session.delete(service)
    await session.flush()
