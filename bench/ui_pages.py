"""Server time of the web UI's main pages with 10,000 incidents in the database.

    .venv/bin/python bench/ui_pages.py [--incidents 10000] [--requests 40]
    .venv/bin/python bench/ui_pages.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

Seeds the demo organisation (bench/ui_seed.py) and a few incidents through the webhook (so
their pages have real timelines, pages and deliveries), then writes the rest of the incidents
straight into the database, half of them paging Bob. Each page is then asked for
`--requests` times in-process (httpx's ASGI transport: the server's own time, no network),
signed in through the form as Bob (a member of both teams) and as Ada (an administrator,
who sees every team); prints p50, p95 and max per page. Target: under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, insert, select, text

sys.path.insert(0, str(Path(__file__).parent))

from ui_seed import (
    PASSWORD,
    DemoOrg,
    demo_org,
    demo_schedules,
    fresh_sqlite,
    make_admin,
    post_demo_alerts,
    serving,
    temp_dir,
)

from tocsin.app import create_app
from tocsin.catalog.models import Service
from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.escalation.models import Page, PageVia
from tocsin.incidents.models import Incident, IncidentStatus

STATUSES = (
    [IncidentStatus.RESOLVED] * 6 + [IncidentStatus.ACKNOWLEDGED] * 2 + [IncidentStatus.OPEN] * 2
)
TROUBLES = ["latency", "errors", "disk", "memory"]
SEVERITIES = ["critical", "high", "medium", "low", "info"]


async def bulk_incidents(org: DemoOrg, count: int) -> None:
    """`count` incidents over the last 30 days across the org's services, half paging Bob."""
    engine = create_engine(org.database_url)
    services = list(org.services.values())
    bob = uuid.UUID(org.users["bob@example.com"])
    rng = random.Random(7)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        rows = await conn.execute(select(Service.id, Service.team_id))
        team_of = {str(r[0]): r[1] for r in rows}
        first = (
            await conn.execute(select(func.coalesce(func.max(Incident.number), 0)))
        ).scalar_one()
        incidents, pages = [], []
        for n in range(count):
            service = rng.choice(services)
            created = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
            status = rng.choice(STATUSES)
            incident_id = uuid.uuid4()
            incidents.append(
                {
                    "id": incident_id,
                    "number": first + n + 1,
                    "integration_id": None,
                    "fingerprint": f"bulk-{n}",
                    "dedup_open": False,
                    "title": f"Bulk incident {n}: {rng.choice(TROUBLES)} on host-{n % 97}",
                    "description": "",
                    "status": status,
                    "priority": rng.choice(SEVERITIES),
                    "team_id": team_of[service],
                    "service_id": uuid.UUID(service),
                    "current_level": 1,
                    "current_repeat": 0,
                    "alert_count": 1,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if n % 2 == 0:
                pages.append(
                    {
                        "id": uuid.uuid4(),
                        "incident_id": incident_id,
                        "user_id": bob,
                        "level_number": 1,
                        "repeat": 0,
                        "escalation_seq": 1,
                        "via": PageVia.USER,
                        "created_at": created,
                    }
                )
        for start in range(0, len(incidents), 1000):
            await conn.execute(insert(Incident), incidents[start : start + 1000])
        for start in range(0, len(pages), 1000):
            await conn.execute(insert(Page), pages[start : start + 1000])
        if engine.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT setval('incident_number_seq', (SELECT max(number) FROM incidents))")
            )
    await engine.dispose()


async def signed_in(app: object, email: str) -> AsyncClient:
    client = AsyncClient(transport=ASGITransport(app=app), base_url="http://bench")  # type: ignore[arg-type]
    form = await client.get("/login")
    token = form.text.split('name="csrf-token" content="')[1].split('"')[0]
    done = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "next": "/", "csrf_token": token}
    )
    assert done.status_code == 303, done.text
    return client


async def measure(client: AsyncClient, path: str, requests: int) -> tuple[list[float], float]:
    """Wall time of each request, and the process's CPU time per request (the database's
    threads included): on a shared machine the CPU figure is the steadier one."""
    timings = []
    cpu_started = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return timings, (time.process_time() - cpu_started) * 1000 / requests


def shown(path: str, names: dict[str, str]) -> str:
    for raw, name in names.items():
        path = path.replace(raw, name)
    return path


async def run(args: argparse.Namespace) -> None:
    if args.postgres:
        from escalation_seed import fresh_database

        url = await asyncio.to_thread(fresh_database, args.postgres, "tocsin_bench_ui")
    else:
        url = await asyncio.to_thread(fresh_sqlite, temp_dir())
    admin_key = await make_admin(url)
    async with serving(url) as base:
        org = await demo_org(base, url, admin_key)
        await demo_schedules(org)
        await post_demo_alerts(org)
        await asyncio.sleep(1)  # the worker pages level 1
    await bulk_incidents(org, args.incidents)
    detail = org.incidents[0]
    app = create_app(
        Settings(database_url=url, secret_key="bench"), clock=SystemClock(), run_worker=False
    )
    total = args.incidents + len(org.incidents)
    print(
        f"{total} incidents on {url.split(':')[0]}; {args.requests} requests per page; "
        f"machine load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'page':<32} {'as':<6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'CPU ms':>7}")
    async with app.router.lifespan_context(app):
        for who, email in (("member", "bob@example.com"), ("admin", "admin@example.com")):
            client = await signed_in(app, email)
            team = org.teams["Payments"]
            schedule = org.schedules["Payments primary"]
            policy = org.policies["Payments default"]
            ids = {detail: "{id}", team: "{team}", schedule: "{id}", policy: "{id}"}
            for path in (
                "/incidents",
                "/incidents?status=open",
                f"/incidents?team={team}",
                "/incidents?mine=1",
                "/incidents/rows",
                f"/incidents/{detail}",
                f"/incidents/{detail}/live",
                f"/incidents/{detail}/row",
                "/oncall",
                "/schedules",
                f"/schedules/{schedule}",
                "/policies",
                f"/policies/{policy}",
            ):
                await measure(client, path, 3)  # warm up
                wall, cpu = await measure(client, path, args.requests)
                timings = sorted(wall)
                p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
                print(
                    f"{shown(path, ids):<32} {who:<6} "
                    f"{statistics.median(timings):7.1f} {p95:7.1f} {timings[-1]:7.1f} {cpu:7.1f}"
                )
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument(
        "--postgres", help="a PostgreSQL server URL; the bench makes database tocsin_bench_ui"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
