"""Shared by bench/escalation.py and bench/crash_escalation.py: a fresh PostgreSQL database,
incidents mid-escalation written straight into it, worker processes, and the read-back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.auth.models import User
from tocsin.db import create_engine
from tocsin.escalation.models import (
    EscalationJob,
    EscalationLevel,
    EscalationPolicy,
    EscalationState,
    IncidentEscalation,
    TargetType,
)
from tocsin.escalation.snapshot import load_policy_snapshot
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.migrations import upgrade
from tocsin.teams.models import Team, TeamMember, TeamRole

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on the server, migrate it, return its URL."""
    server = make_url(server_url)

    async def recreate() -> None:
        engine = create_engine(server.render_as_string(hide_password=False))
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(recreate())
    url = server.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


async def seed(
    engine: AsyncEngine,
    *,
    incidents: int,
    levels: int,
    repeat_count: int,
    first_due: datetime,
    spread: timedelta,
    held: int = 0,
    held_due: datetime | None = None,
) -> list[uuid.UUID]:
    """A team of three, a policy of `levels` user levels, and `incidents` open incidents at
    level 1 (already paged) whose timers for level 2 fall due evenly over `spread`; then
    `held` more whose timers all fall due at `held_due` (a reserve, pulled in later)."""
    now = datetime.now(UTC)
    team_id, policy_id = uuid.uuid4(), uuid.uuid4()
    users = [uuid.uuid4() for _ in range(3)]
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(Team).values(
                id=team_id, name="Bench", description="", created_at=now, updated_at=now
            )
        )
        await conn.execute(
            sa.insert(User),
            [
                {
                    "id": u,
                    "email": f"{u}@bench.example",
                    "name": str(u),
                    "is_admin": False,
                    "is_active": True,
                    "time_zone": "UTC",
                    "created_at": now,
                    "updated_at": now,
                }
                for u in users
            ],
        )
        await conn.execute(
            sa.insert(TeamMember),
            [
                {"team_id": team_id, "user_id": u, "role": TeamRole.RESPONDER, "created_at": now}
                for u in users
            ],
        )
        await conn.execute(
            sa.insert(EscalationPolicy).values(
                id=policy_id,
                team_id=team_id,
                name="Bench",
                description="",
                is_default=True,
                repeat_count=repeat_count,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            sa.insert(EscalationLevel),
            [
                {
                    "id": uuid.uuid4(),
                    "policy_id": policy_id,
                    "level_number": n + 1,
                    "target_type": TargetType.USER,
                    "target_id": users[n % len(users)],
                    "timeout_minutes": 1,
                }
                for n in range(levels)
            ],
        )
        snapshot = await load_policy_snapshot(conn, policy_id)
        assert snapshot is not None
        ids = [uuid.uuid4() for _ in range(incidents + held)]
        step = spread / max(incidents - 1, 1)
        held_at = held_due or first_due + spread

        def due_of(n: int) -> datetime:
            return first_due + step * n if n < incidents else held_at

        for start in range(0, len(ids), 1000):
            chunk = list(enumerate(ids))[start : start + 1000]
            await conn.execute(
                sa.insert(Incident),
                [
                    {
                        "id": i,
                        "number": n + 1,
                        "fingerprint": f"bench-{n}",
                        "dedup_open": False,
                        "title": f"bench {n}",
                        "description": "",
                        "status": IncidentStatus.OPEN,
                        "priority": "critical",
                        "team_id": team_id,
                        "escalation_policy_id": policy_id,
                        "current_level": 1,
                        "current_repeat": 0,
                        "alert_count": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, i in chunk
                ],
            )
            await conn.execute(
                sa.insert(IncidentEscalation),
                [
                    {
                        "incident_id": i,
                        "policy_id": policy_id,
                        "policy_snapshot": snapshot.to_json(),
                        "state": EscalationState.ESCALATING,
                        "level": 1,
                        "repeat": 0,
                        "seq": 1,
                        "updated_at": now,
                    }
                    for _, i in chunk
                ],
            )
            await conn.execute(
                sa.insert(EscalationJob),
                [
                    {
                        "id": uuid.uuid4(),
                        "incident_id": i,
                        "scheduled_level": 2,
                        "scheduled_repeat": 0,
                        "scheduled_for": due_of(n),
                        "completed": False,
                        "created_at": now,
                        "escalation_seq": 1,
                        "attempts": 0,
                    }
                    for n, i in chunk
                ],
            )
        await conn.execute(sa.text("SELECT setval('incident_number_seq', :n)"), {"n": len(ids) + 1})
    return ids


def start_worker(database_url: str, name: str, *, lease_seconds: float = 10) -> Any:
    env = {
        **os.environ,
        "TOCSIN_DATABASE_URL": database_url,
        "TOCSIN_SECRET_KEY": "bench",  # a separate worker refuses to start without it
        "TOCSIN_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tocsin.cli",
            "worker",
            "--steps",
            "escalation",
            "--worker-id",
            name,
            "--lease-seconds",
            str(lease_seconds),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=30)


async def pending_timers(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(EscalationJob)
                    .where(EscalationJob.completed.is_(False), EscalationJob.cancelled_at.is_(None))
                )
            ).scalar_one()
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
