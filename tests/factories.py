"""Seeding helpers: rows straight into the database, for tests that are about something else
than the CRUD API (which has its own tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.auth.accounts import create_user, issue_api_key
from tocsin.auth.secrets import display_prefix, hash_token, new_token
from tocsin.catalog.models import Service, ServiceStatus
from tocsin.db import create_session_factory
from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.integrations.models import Integration, IntegrationType
from tocsin.teams.models import Team, TeamMember, TeamRole, TeamTag


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass(frozen=True)
class Cast:
    admin: Person
    alice: Person  # manager of Payments
    bob: Person  # responder in Payments
    olive: Person  # observer in Payments
    mallory: Person  # in no team
    payments: uuid.UUID  # the team


async def make_person(
    engine: AsyncEngine, now: datetime, *, email: str, name: str, admin: bool = False
) -> Person:
    async with create_session_factory(engine)() as session, session.begin():
        user = await create_user(session, email=email, name=name, is_admin=admin, now=now)
        _, key = await issue_api_key(session, user_id=user.id, now=now)
        return Person(user.id, key)


async def make_team(
    engine: AsyncEngine,
    now: datetime,
    *,
    name: str,
    members: dict[uuid.UUID, TeamRole] | None = None,
    tags: dict[str, str] | None = None,
) -> uuid.UUID:
    async with create_session_factory(engine)() as session, session.begin():
        team = Team(name=name, description="", created_at=now, updated_at=now)
        session.add(team)
        await session.flush()
        for user_id, role in (members or {}).items():
            session.add(TeamMember(team_id=team.id, user_id=user_id, role=role, created_at=now))
        for key, value in (tags or {}).items():
            session.add(TeamTag(team_id=team.id, key=key, value=value, created_at=now))
        return team.id


async def make_policy(
    engine: AsyncEngine,
    now: datetime,
    *,
    team_id: uuid.UUID,
    name: str = "Default",
    is_default: bool = True,
    is_active: bool = True,
    targets: list[tuple[TargetType, uuid.UUID | None]] | None = None,
    timeout_minutes: int = 30,
) -> uuid.UUID:
    async with create_session_factory(engine)() as session, session.begin():
        policy = EscalationPolicy(
            team_id=team_id,
            name=name,
            description="",
            is_default=is_default,
            repeat_count=1,
            is_active=is_active,
            created_at=now,
            updated_at=now,
        )
        session.add(policy)
        await session.flush()
        for number, (target_type, target_id) in enumerate(
            targets or [(TargetType.ENTIRE_TEAM, None)], start=1
        ):
            session.add(
                EscalationLevel(
                    policy_id=policy.id,
                    level_number=number,
                    target_type=target_type,
                    target_id=target_id,
                    timeout_minutes=timeout_minutes,
                )
            )
        return policy.id


async def make_service(
    engine: AsyncEngine,
    now: datetime,
    *,
    team_id: uuid.UUID,
    routing_key: str,
    name: str | None = None,
    policy_id: uuid.UUID | None = None,
    status: ServiceStatus = ServiceStatus.ACTIVE,
) -> uuid.UUID:
    async with create_session_factory(engine)() as session, session.begin():
        service = Service(
            name=name or routing_key,
            description="",
            routing_key=routing_key,
            team_id=team_id,
            escalation_policy_id=policy_id,
            status=status,
            created_at=now,
            updated_at=now,
        )
        session.add(service)
        await session.flush()
        return service.id


@dataclass(frozen=True)
class IntegrationRef:
    id: uuid.UUID
    key: str

    @property
    def url(self) -> str:
        return f"/webhooks/{self.key}"


async def make_integration(
    engine: AsyncEngine,
    now: datetime,
    *,
    name: str = "monitoring",
    default_service_id: uuid.UUID | None = None,
    dedup_window_minutes: int = 60,
    auto_resolve: bool = True,
    active: bool = True,
    type: IntegrationType = IntegrationType.GENERIC,
    options: dict[str, Any] | None = None,
    templates: dict[str, str] | None = None,
    rate_limit_per_minute: int | None = None,
    key: str | None = None,
) -> IntegrationRef:
    key = key or new_token("ik")
    async with create_session_factory(engine)() as session, session.begin():
        integration = Integration(
            name=name,
            type=type,
            key_hash=hash_token(key),
            key_prefix=display_prefix(key),
            active=active,
            default_service_id=default_service_id,
            dedup_window_minutes=dedup_window_minutes,
            auto_resolve=auto_resolve,
            options=options or {},
            templates=templates or {},
            rate_limit_per_minute=rate_limit_per_minute,
            created_at=now,
            updated_at=now,
        )
        session.add(integration)
        await session.flush()
        return IntegrationRef(integration.id, key)


async def make_cast(engine: AsyncEngine, now: datetime) -> Cast:
    admin = await make_person(engine, now, email="admin@example.com", name="Admin", admin=True)
    alice = await make_person(engine, now, email="alice@example.com", name="Alice")
    bob = await make_person(engine, now, email="bob@example.com", name="Bob")
    olive = await make_person(engine, now, email="olive@example.com", name="Olive")
    mallory = await make_person(engine, now, email="mallory@example.com", name="Mallory")
    payments = await make_team(
        engine,
        now,
        name="Payments",
        members={
            alice.id: TeamRole.MANAGER,
            bob.id: TeamRole.RESPONDER,
            olive.id: TeamRole.OBSERVER,
        },
    )
    return Cast(admin, alice, bob, olive, mallory, payments)


@dataclass(frozen=True)
class World:
    """The cast, plus Payments' default policy, its service `payments-api` and a generic
    integration with no default service."""

    cast: Cast
    policy: uuid.UUID
    service: uuid.UUID
    integration: IntegrationRef


async def make_world(engine: AsyncEngine, now: datetime, cast: Cast) -> World:
    policy = await make_policy(engine, now, team_id=cast.payments)
    service = await make_service(
        engine, now, team_id=cast.payments, routing_key="payments-api", name="Payments API"
    )
    integration = await make_integration(engine, now)
    return World(cast, policy, service, integration)
