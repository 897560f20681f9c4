"""What a person editing an escalation policy picks from: the people and schedules of the
policy's team as level targets, and the integrations and routing keys to simulate with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.catalog.models import Service
from tocsin.escalation.models import EscalationPolicy
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.schedules.models import Schedule
from tocsin.teams.membership import active_member_names

# Integrations offered to the Simulate panel; a bigger installation types the id.
MAX_INTEGRATIONS = 200


@dataclass(frozen=True)
class Target:
    value: str  # "user:<id>", "schedule:<id>" or "entire_team"
    name: str


@dataclass(frozen=True)
class LevelTargets:
    people: list[Target]
    schedules: list[Target]


async def level_targets(session: AsyncSession, team_id: uuid.UUID) -> LevelTargets:
    """The team's members (active ones) and its schedules, by name."""
    people = await active_member_names(session, team_id)
    schedules = await session.execute(
        select(Schedule.id, Schedule.name)
        .where(Schedule.team_id == team_id)
        .order_by(Schedule.name)
    )
    return LevelTargets(
        people=[Target(f"user:{user_id}", name) for user_id, name in people],
        schedules=[Target(f"schedule:{row.id}", row.name) for row in schedules],
    )


@dataclass(frozen=True)
class IntegrationChoice:
    id: uuid.UUID
    name: str
    type: IntegrationType


async def simulation_integrations(session: AsyncSession) -> list[IntegrationChoice]:
    """Integrations that take a JSON payload, by name (every user may list integrations)."""
    rows = await session.execute(
        select(Integration.id, Integration.name, Integration.type)
        .where(Integration.type.not_in([IntegrationType.EMAIL, IntegrationType.HEARTBEAT]))
        .order_by(Integration.name, Integration.id)
        .limit(MAX_INTEGRATIONS)
    )
    return [IntegrationChoice(row.id, row.name, row.type) for row in rows]


async def routing_keys_of_policy(session: AsyncSession, policy: EscalationPolicy) -> list[str]:
    """Routing keys of the services that page through this policy (a team's default policy
    also takes its services that name none), for a sample payload."""
    uses = Service.escalation_policy_id == policy.id
    if policy.is_default:
        uses = or_(
            uses,
            and_(Service.team_id == policy.team_id, Service.escalation_policy_id.is_(None)),
        )
    rows = await session.execute(
        select(Service.routing_key).where(uses).order_by(Service.name).limit(20)
    )
    return [key for key in rows.scalars() if key]
