"""What a person looking at incidents can pick from: the teams and services to filter the
list by (only those they may see), the people and policies an incident can be reassigned
to, and the names behind the user ids of a timeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.auth.models import User
from tocsin.auth.permissions import visible_team_ids
from tocsin.catalog.models import Service
from tocsin.escalation.models import EscalationPolicy
from tocsin.integrations.models import Integration
from tocsin.teams.models import Team, TeamMember, TeamRole


@dataclass(frozen=True)
class Choice:
    id: uuid.UUID
    name: str
    group: str = ""  # the team of a service, for a grouped list


async def visible_teams(session: AsyncSession, principal: Principal) -> list[Choice]:
    stmt = select(Team.id, Team.name).order_by(Team.name)
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(Team.id.in_(visible))
    return [Choice(row.id, row.name) for row in await session.execute(stmt)]


async def visible_services(session: AsyncSession, principal: Principal) -> list[Choice]:
    stmt = (
        select(Service.id, Service.name, Team.name.label("team"))
        .join(Team, Team.id == Service.team_id)
        .order_by(Team.name, Service.name)
    )
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(Service.team_id.in_(visible))
    return [Choice(row.id, row.name, row.team) for row in await session.execute(stmt)]


@dataclass(frozen=True)
class ReassignTargets:
    people: list[Choice]
    policies: list[Choice]


async def reassign_targets(session: AsyncSession, team_id: uuid.UUID) -> ReassignTargets:
    """The team's active members and its escalation policies."""
    people = await session.execute(
        select(User.id, User.name)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team_id, User.is_active.is_(True))
        .order_by(User.name)
    )
    policies = await session.execute(
        select(EscalationPolicy.id, EscalationPolicy.name)
        .where(EscalationPolicy.team_id == team_id)
        .order_by(EscalationPolicy.name)
    )
    return ReassignTargets(
        people=[Choice(row.id, row.name) for row in people],
        policies=[Choice(row.id, row.name) for row in policies],
    )


async def user_names(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {row.id: row.name for row in rows}


async def integration_names(
    session: AsyncSession, integration_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    ids = set(integration_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Integration.id, Integration.name).where(Integration.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


async def policy_choices(session: AsyncSession, principal: Principal) -> list[Choice]:
    """The escalation policies of the teams this user belongs to (all for admins), grouped
    by team: what a service may be given."""
    stmt = (
        select(EscalationPolicy.id, EscalationPolicy.name, Team.name.label("team"))
        .join(Team, Team.id == EscalationPolicy.team_id)
        .order_by(Team.name, EscalationPolicy.name)
    )
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(EscalationPolicy.team_id.in_(visible))
    return [Choice(row.id, row.name, row.team) for row in await session.execute(stmt)]


async def team_names(session: AsyncSession) -> dict[uuid.UUID, str]:
    """Every team's name: the catalog and the integrations are readable by anyone signed in,
    and show which team each service belongs to."""
    return {row.id: row.name for row in await session.execute(select(Team.id, Team.name))}


async def service_names(session: AsyncSession) -> dict[uuid.UUID, tuple[str, uuid.UUID]]:
    """Every service's name and team."""
    rows = await session.execute(select(Service.id, Service.name, Service.team_id))
    return {row.id: (row.name, row.team_id) for row in rows}


async def policy_names(
    session: AsyncSession, policy_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    ids = set(policy_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(EscalationPolicy.id, EscalationPolicy.name).where(EscalationPolicy.id.in_(ids))
    )
    return {row.id: row.name for row in rows}


async def managed_teams(session: AsyncSession, principal: Principal) -> list[Choice]:
    """The teams this user may configure: those they manage (every team for admins)."""
    stmt = select(Team.id, Team.name).order_by(Team.name)
    if not principal.is_admin:
        stmt = stmt.join(TeamMember, TeamMember.team_id == Team.id).where(
            TeamMember.user_id == principal.user_id, TeamMember.role == TeamRole.MANAGER
        )
    return [Choice(row.id, row.name) for row in await session.execute(stmt)]
