"""Shared by bench/ui_pages.py and bench/screenshots.py: a migrated SQLite database with a
small organisation set up through the API (teams, people with passwords, services, policies,
an integration), a real `tocsin serve`-like server on a loopback port, and incidents.

Other UI pages' scripts build on `demo_org()`: add what your page needs to the organisation
there (through the API), so every screenshot shows the same world.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tocsin.app import create_app
from tocsin.auth.accounts import create_user, issue_api_key
from tocsin.clock import SystemClock
from tocsin.config import Settings
from tocsin.db import create_engine, create_session_factory
from tocsin.migrations import upgrade

PASSWORD = "correct horse battery"


@dataclass
class DemoOrg:
    base_url: str
    database_url: str
    admin_key: str
    users: dict[str, str] = field(default_factory=dict)  # email -> user id
    teams: dict[str, str] = field(default_factory=dict)  # name -> team id
    services: dict[str, str] = field(default_factory=dict)  # routing key -> service id
    policies: dict[str, str] = field(default_factory=dict)  # name -> policy id
    webhook_path: str = ""
    incidents: list[str] = field(default_factory=list)
    schedules: dict[str, str] = field(default_factory=dict)  # name -> schedule id


def fresh_sqlite(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'tocsin.db'}"
    upgrade(url)
    return url


async def make_admin(database_url: str) -> str:
    """The first administrator, with PASSWORD; returns an API key for seeding."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            now = datetime.now(UTC)
            user = await create_user(
                session,
                email="admin@example.com",
                name="Ada Admin",
                is_admin=True,
                now=now,
                password=PASSWORD,
                time_zone="Europe/Paris",
            )
            _, key = await issue_api_key(session, user_id=user.id, now=now, name="seed")
            return key
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def serving(database_url: str, *, worker: bool = True) -> AsyncIterator[str]:
    """The app on a free loopback port, as `tocsin serve` runs it; yields its base URL."""
    settings = Settings(database_url=database_url, secret_key="ui-bench-secret")
    app = create_app(settings, clock=SystemClock(), run_worker=worker)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _api(http: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
    response = await http.request(method, path, json=body)
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


PEOPLE = [
    ("alice@example.com", "Alice Martin", "Europe/Paris"),
    ("bob@example.com", "Bob Okafor", "Europe/London"),
    ("olive@example.com", "Olive Chen", "America/New_York"),
    ("priya@example.com", "Priya Raman", "Asia/Kolkata"),
]


async def demo_org(base_url: str, database_url: str, admin_key: str) -> DemoOrg:
    """Two teams, four people (all with PASSWORD), three services, a policy per team and a
    generic integration, set up through the API."""
    org = DemoOrg(base_url, database_url, admin_key)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60
    ) as http:
        for email, name, zone in PEOPLE:
            user = await _api(
                http,
                "POST",
                "/api/v1/users",
                {"email": email, "name": name, "password": PASSWORD, "time_zone": zone},
            )
            org.users[email] = user["id"]
        roles = {
            "Payments": [
                ("alice@example.com", "manager"),
                ("bob@example.com", "responder"),
                ("olive@example.com", "observer"),
            ],
            "Platform": [("priya@example.com", "manager"), ("bob@example.com", "responder")],
        }
        for team_name, members in roles.items():
            team = await _api(http, "POST", "/api/v1/teams", {"name": team_name, "description": ""})
            org.teams[team_name] = team["id"]
            for email, role in members:
                await _api(
                    http,
                    "POST",
                    f"/api/v1/teams/{team['id']}/members",
                    {"user_id": org.users[email], "role": role},
                )
            first = members[0][0]
            policy = await _api(
                http,
                "POST",
                "/api/v1/escalation-policies",
                {
                    "team_id": team["id"],
                    "name": f"{team_name} default",
                    "is_default": True,
                    "levels": [
                        {
                            "level_number": 1,
                            "target_type": "user",
                            "target_id": org.users[first],
                            "timeout_minutes": 15,
                        },
                        {"level_number": 2, "target_type": "entire_team", "timeout_minutes": 30},
                    ],
                },
            )
            org.policies[policy["name"]] = policy["id"]
        for key, name, team_name in (
            ("payments-api", "Payments API", "Payments"),
            ("checkout-web", "Checkout web", "Payments"),
            ("k8s-prod", "Kubernetes prod", "Platform"),
        ):
            service = await _api(
                http,
                "POST",
                "/api/v1/services",
                {"name": name, "routing_key": key, "team_id": org.teams[team_name]},
            )
            org.services[key] = service["id"]
        integration = await _api(
            http, "POST", "/api/v1/integrations", {"name": "Prometheus", "type": "generic"}
        )
        org.webhook_path = "/webhooks/" + integration["key"]
    return org


DEMO_ALERTS = [
    ("payments-api", "critical", "Card authorisations failing: 38% errors in eu-west-1"),
    ("k8s-prod", "high", "Node pool prod-b: 3 nodes NotReady"),
    ("checkout-web", "medium", "Checkout p95 latency above 1.5 s for 10 min"),
    ("payments-api", "high", "Settlement batch job has not run since 02:00"),
    ("k8s-prod", "low", "Certificate for api.internal expires in 9 days"),
    ("checkout-web", "critical", "Checkout 5xx rate above 5%"),
    ("k8s-prod", "medium", "PersistentVolume pg-data-2 at 91% capacity"),
]


async def post_demo_alerts(org: DemoOrg) -> None:
    """The demo alerts through the webhook, as a monitoring tool sends them."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=60) as http:
        for n, (key, severity, title) in enumerate(DEMO_ALERTS):
            sent = await http.post(
                org.webhook_path,
                json={
                    "title": title,
                    "severity": severity,
                    "routing_key": key,
                    "source": "prometheus",
                    "tags": {"env": "prod", "region": "eu-west-1"},
                    "details": {
                        "alertname": title.split(":")[0],
                        "runbook": "https://runbooks.example.com/" + key,
                        "value": 38.2 + n,
                        "labels": {"instance": f"{key}-{n}.prod", "job": key},
                    },
                },
            )
            sent.raise_for_status()
            org.incidents.append(sent.json()["incident_id"])


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tocsin-ui-"))


async def demo_schedules(org: DemoOrg) -> None:
    """On-call set up as a team lead would: Payments gets a Europe/Paris schedule with a day
    layer, a weekday night layer (so weekend nights are gaps) and an override, and its
    default policy pages through it; Platform gets a plain weekly rotation."""
    users = org.users
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    handoff = f"{monday.isoformat()}T09:00"
    start = f"{(monday - timedelta(days=7)).isoformat()}T00:00:00Z"

    def turns(*emails: str) -> list[dict[str, list[str]]]:
        return [{"user_ids": [users[email]]} for email in emails]

    async with httpx.AsyncClient(
        base_url=org.base_url, headers={"Authorization": f"Bearer {org.admin_key}"}, timeout=60
    ) as http:
        primary = await _api(
            http,
            "POST",
            "/api/v1/schedules",
            {
                "team_id": org.teams["Payments"],
                "name": "Payments primary",
                "time_zone": "Europe/Paris",
                "layers": [
                    {
                        "name": "Day shift",
                        "rotation": "weekly",
                        "handoff": handoff,
                        "start": start,
                        "participants": turns("alice@example.com", "bob@example.com"),
                        "restrictions": [{"start": "08:00", "end": "20:00"}],
                    },
                    {
                        "name": "Weeknights",
                        "rotation": "daily",
                        "handoff": handoff.replace("09:00", "20:00"),
                        "start": start,
                        "participants": turns("bob@example.com", "alice@example.com"),
                        "restrictions": [
                            {"days": ["mon", "tue", "wed", "thu"], "start": "20:00", "end": "08:00"}
                        ],
                    },
                ],
            },
        )
        org.schedules[primary["name"]] = primary["id"]
        tomorrow = datetime.now(UTC).replace(hour=11, minute=0, second=0, microsecond=0)
        tomorrow += timedelta(days=1)
        await _api(
            http,
            "POST",
            f"/api/v1/schedules/{primary['id']}/overrides",
            {
                "user_ids": [users["olive@example.com"]],
                "start": tomorrow.isoformat(),
                "end": (tomorrow + timedelta(hours=6)).isoformat(),
            },
        )
        await _api(
            http,
            "PATCH",
            f"/api/v1/escalation-policies/{org.policies['Payments default']}",
            {
                "levels": [
                    {
                        "level_number": 1,
                        "target_type": "schedule",
                        "target_id": primary["id"],
                        "timeout_minutes": 5,
                    },
                    {
                        "level_number": 2,
                        "target_type": "user",
                        "target_id": users["alice@example.com"],
                        "timeout_minutes": 15,
                    },
                    {"level_number": 3, "target_type": "entire_team", "timeout_minutes": 30},
                ],
                "repeat_count": 2,
            },
        )
        platform = await _api(
            http,
            "POST",
            "/api/v1/schedules",
            {
                "team_id": org.teams["Platform"],
                "name": "Platform on call",
                "time_zone": "Asia/Kolkata",
                "layers": [
                    {
                        "name": "Weekly",
                        "rotation": "weekly",
                        "handoff": handoff,
                        "start": start,
                        "participants": turns("priya@example.com", "bob@example.com"),
                    }
                ],
            },
        )
        org.schedules[platform["name"]] = platform["id"]
