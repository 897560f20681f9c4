"""A scene for escalation tests: Payments with Alice (manager), Bob (responder), Olive
(observer), Carol (responder); a policy whose levels the test chooses; an integration routed
to a service on it; and helpers to open incidents, run the worker step, and read pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import (
    Cast,
    IntegrationRef,
    Person,
    make_integration,
    make_person,
    make_service,
)
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_session_factory
from tocsin.escalation.models import (
    EscalationJob,
    EscalationLevel,
    EscalationPolicy,
    Page,
    TargetType,
)
from tocsin.escalation.step import fire_due_escalations
from tocsin.schedules.definition import Rotation
from tocsin.schedules.models import (
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ScheduleOverrideUser,
    ScheduleParticipant,
)
from tocsin.teams.models import TeamMember, TeamRole
from tocsin.worker.context import WorkerContext

Level = tuple[TargetType, uuid.UUID | None, int]  # target, id, timeout minutes


@dataclass(frozen=True)
class PagedRow:
    user_id: uuid.UUID
    level: int | None
    repeat: int
    at: datetime
    via: str


@dataclass
class Scene:
    cast: Cast
    carol: Person
    engine: AsyncEngine
    clock: FrozenClock
    client: AsyncClient
    settings: Settings
    integration: IntegrationRef
    service: uuid.UUID
    policy: uuid.UUID

    async def set_levels(
        self, levels: list[Level], *, repeat_count: int = 1, ack_timeout: int | None = None
    ) -> None:
        """Replace the service policy's levels (straight in the database)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(EscalationLevel).where(EscalationLevel.policy_id == self.policy)
            )
            await conn.execute(
                sa.update(EscalationPolicy)
                .where(EscalationPolicy.id == self.policy)
                .values(repeat_count=repeat_count, ack_timeout_minutes=ack_timeout)
            )
            for number, (target_type, target_id, timeout) in enumerate(levels, start=1):
                await conn.execute(
                    sa.insert(EscalationLevel).values(
                        id=uuid.uuid4(),
                        policy_id=self.policy,
                        level_number=number,
                        target_type=target_type,
                        target_id=target_id,
                        timeout_minutes=timeout,
                    )
                )

    async def open_incident(self, title: str = "Checkout down") -> str:
        response = await self.client.post(
            self.integration.url, json={"title": title, "routing_key": "checkout"}
        )
        assert response.status_code == 202, response.text
        incident_id: str = response.json()["incident_id"]
        await self.run_worker()  # the worker pages level 1 at once
        return incident_id

    def context(self, worker_id: str = "worker-1", lease_seconds: int = 60) -> WorkerContext:
        return WorkerContext(
            self.engine, self.clock, self.settings, worker_id, timedelta(seconds=lease_seconds)
        )

    async def run_worker(self, worker_id: str = "worker-1") -> None:
        """Run the escalation step until it finds nothing due at the clock's now."""
        ctx = self.context(worker_id)
        while await fire_due_escalations(ctx):
            pass

    async def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
        await self.run_worker()

    async def pages(self, incident_id: str) -> list[PagedRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(Page.user_id, Page.level_number, Page.repeat, Page.created_at, Page.via)
                .where(Page.incident_id == uuid.UUID(incident_id))
                .order_by(Page.created_at, Page.escalation_seq, Page.user_id)
            )
            return [PagedRow(r[0], r[1], r[2], r[3], r[4].value) for r in rows]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/api/v1/incidents/{incident_id}", headers=self.cast.admin.headers
        )
        assert response.status_code == 200
        timeline: list[dict[str, Any]] = response.json()["timeline"]
        return timeline

    async def kinds(self, incident_id: str) -> list[str]:
        return [entry["kind"] for entry in await self.timeline(incident_id)]

    async def act(self, incident_id: str, action: str, who: Person, body: Any = None) -> Any:
        return await self.client.post(
            f"/api/v1/incidents/{incident_id}/{action}", headers=who.headers, json=body
        )

    async def pending_timers(self, incident_id: str) -> int:
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(EscalationJob)
                        .where(
                            EscalationJob.incident_id == uuid.UUID(incident_id),
                            EscalationJob.completed.is_(False),
                            EscalationJob.cancelled_at.is_(None),
                        )
                    )
                ).scalar_one()
            )

    async def make_schedule(
        self,
        participants: list[uuid.UUID],
        *,
        handoff: datetime,
        override: tuple[datetime, datetime, uuid.UUID] | None = None,
    ) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID | None]:
        """A UTC schedule with one daily layer rotating `participants` at `handoff`'s time;
        returns (schedule, layer, override)."""
        now = self.clock.now()
        async with create_session_factory(self.engine)() as session, session.begin():
            schedule = Schedule(
                team_id=self.cast.payments,
                name="Primary",
                time_zone="UTC",
                created_at=now,
                updated_at=now,
            )
            session.add(schedule)
            await session.flush()
            layer = ScheduleLayer(
                schedule_id=schedule.id,
                position=0,
                name="daily",
                start=handoff.replace(tzinfo=now.tzinfo),
                rotation=Rotation.DAILY,
                turn_length=1,
                handoff=handoff,
                restrictions=[],
                created_at=now,
                updated_at=now,
            )
            session.add(layer)
            await session.flush()
            for position, user_id in enumerate(participants):
                session.add(
                    ScheduleParticipant(layer_id=layer.id, position=position, user_id=user_id)
                )
            override_id = None
            if override is not None:
                start, end, user_id = override
                row = ScheduleOverride(
                    schedule_id=schedule.id, start=start, end=end, created_at=now
                )
                session.add(row)
                await session.flush()
                session.add(ScheduleOverrideUser(override_id=row.id, user_id=user_id))
                override_id = row.id
            return schedule.id, layer.id, override_id


@pytest.fixture
async def scene(
    engine: AsyncEngine,
    clock: FrozenClock,
    client: AsyncClient,
    settings: Settings,
    cast: Cast,
) -> Scene:
    now = clock.now()
    carol = await make_person(engine, now, email="carol@example.com", name="Carol")
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(TeamMember).values(
                team_id=cast.payments, user_id=carol.id, role=TeamRole.RESPONDER, created_at=now
            )
        )
        policy = uuid.uuid4()
        await conn.execute(
            sa.insert(EscalationPolicy).values(
                id=policy,
                team_id=cast.payments,
                name="Checkout",
                description="",
                is_default=False,
                repeat_count=1,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
    service = await make_service(
        engine, now, team_id=cast.payments, routing_key="checkout", policy_id=policy
    )
    integration = await make_integration(engine, now)
    scene = Scene(cast, carol, engine, clock, client, settings, integration, service, policy)
    await scene.set_levels(
        [(TargetType.USER, cast.bob.id, 5), (TargetType.USER, cast.alice.id, 10)]
    )
    return scene
