"""Heartbeat throughput: how fast pings are recorded, and how fast the worker step opens the
alerts of monitors that all went late at once, with several workers racing for them.

Seeds a fresh database (SQLite file by default, or --database-url for PostgreSQL, which must
be an empty database: it is migrated), then prints pings/s and late alerts/s, and checks that
every late monitor fired exactly once.

    python bench/heartbeats.py -n 2000 --workers 2
    python bench/heartbeats.py -n 2000 --workers 4 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_heartbeats
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.alerts.models import Severity
from tocsin.catalog.models import Service
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_engine, create_session_factory
from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.heartbeats.monitors import create_monitor
from tocsin.heartbeats.watch import fire_late_heartbeats, record_ping
from tocsin.incidents.models import Incident
from tocsin.migrations import upgrade
from tocsin.teams.models import Team
from tocsin.worker.context import WorkerContext

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
INTERVAL = 300


async def seed(engine: AsyncEngine, n: int) -> list[str]:
    async with create_session_factory(engine)() as session, session.begin():
        team = Team(name="Bench", description="", created_at=START, updated_at=START)
        session.add(team)
        await session.flush()
        policy = EscalationPolicy(
            team_id=team.id,
            name="Default",
            description="",
            is_default=True,
            repeat_count=1,
            is_active=True,
            created_at=START,
            updated_at=START,
        )
        session.add(policy)
        await session.flush()
        session.add(
            EscalationLevel(
                policy_id=policy.id,
                level_number=1,
                target_type=TargetType.ENTIRE_TEAM,
                target_id=None,
                timeout_minutes=30,
            )
        )
        service = Service(
            name="bench",
            description="",
            routing_key="bench",
            team_id=team.id,
            created_at=START,
            updated_at=START,
        )
        session.add(service)
        await session.flush()
        keys = []
        for i in range(n):
            _, key = await create_monitor(
                session,
                name=f"job {i}",
                service_id=service.id,
                interval_seconds=INTERVAL,
                grace_seconds=0,
                severity=Severity.HIGH,
                now=START,
            )
            keys.append(key)
        return keys


async def drain(ctx: WorkerContext) -> int:
    steps = 0
    while await fire_late_heartbeats(ctx):
        steps += 1
    return steps


async def run(url: str, n: int, workers: int) -> None:
    engine = create_engine(url)
    clock = FrozenClock(START)
    settings = Settings(database_url=url)
    try:
        keys = await seed(engine, n)

        started = time.perf_counter()
        for key in keys:
            async with engine.begin() as conn:
                await record_ping(conn, key, now=clock.now())
        ping_seconds = time.perf_counter() - started

        clock.advance(timedelta(seconds=INTERVAL + 1))
        engines = [create_engine(url) for _ in range(workers)]
        contexts = [
            WorkerContext(engine=e, clock=clock, settings=settings, worker_id=f"bench-{i}")
            for i, e in enumerate(engines)
        ]
        started = time.perf_counter()
        fired = await asyncio.gather(*(drain(c) for c in contexts))
        fire_seconds = time.perf_counter() - started
        for e in engines:
            await e.dispose()

        async with engine.connect() as conn:
            incidents = (await conn.execute(select(func.count()).select_from(Incident))).scalar()
    finally:
        await engine.dispose()

    backend = url.split(":", 1)[0]
    print(f"backend {backend}, {n} monitors, {workers} workers")
    print(f"pings:       {n / ping_seconds:8.0f} /s  (one transaction each, sequential)")
    print(f"late alerts: {n / fire_seconds:8.0f} /s  (each opens an incident and pages level 1)")
    print(f"steps that found work, per worker: {fired}; incidents: {incidents}")
    if incidents != n:
        raise SystemExit(f"expected {n} incidents, one per monitor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="monitors")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        asyncio.run(run(url, args.n, args.workers))


if __name__ == "__main__":
    main()
