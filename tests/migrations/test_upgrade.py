"""Upgrading a database of the previous release, with data in it: migrate an empty database to
that release's schema (0007), fill it with plain SQL the way that release wrote its rows, upgrade
to head, and use the data through the API.

The rows are written against the 0007 schema by hand, never through today's models, so the
test keeps meaning "an installation of that release upgrades" however the models change.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import POSTGRES_URL
from tocsin.app import create_app
from tocsin.auth.secrets import display_prefix, hash_token
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_engine, new_ordered_id
from tocsin.escalation.step import fire_due_escalations
from tocsin.migrations import alembic_config, upgrade
from tocsin.worker.context import WorkerContext

PREVIOUS_RELEASE = "0007"
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

OPENED = datetime(2026, 3, 9, 22, 15, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=5)

ADMIN_KEY = "tk_previousreleaseadminkey0000000000000000"
BOB_KEY = "tk_previousreleasebobkey000000000000000000000"
INTEGRATION_KEY = "ik_previousreleaseintegration00000000000000"


class Ids:
    admin, bob = uuid.uuid4(), uuid.uuid4()
    team, policy, level, service = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    schedule, layer, override = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    integration, incident, alert = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start_timer, level_timer, page = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    method, rule, delivery, attempt = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _value(dialect: str, value: Any) -> Any:
    """A value as that release's driver stored it: on SQLite UUIDs are 32 hex digits and
    timestamps naive UTC text; JSON is text on both."""
    if isinstance(value, uuid.UUID):
        return value.hex if dialect == "sqlite" else value
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def _insert(conn: AsyncConnection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    dialect = conn.dialect.name
    await conn.execute(
        sa.text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})'),
        {name: _value(dialect, value) for name, value in row.items()},
    )


async def fill_previous_release(url: str) -> None:
    """What an installation of release 0007 holds after an alert opened an incident that paged
    Bob (by email), with the next level's timer pending."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await _fill(conn)
    finally:
        await engine.dispose()


async def _fill(conn: AsyncConnection) -> None:
    t = OPENED - timedelta(days=30)
    i = Ids
    for user, email, admin in (
        (i.admin, "admin@example.com", True),
        (i.bob, "bob@example.com", False),
    ):
        await _insert(
            conn,
            "users",
            {
                "id": user,
                "email": email,
                "name": email.split("@")[0].title(),
                "is_admin": admin,
                "is_active": True,
                "time_zone": "Europe/Berlin",
                "password_hash": None,
                "created_at": t,
                "updated_at": t,
            },
        )
    for key, user in ((ADMIN_KEY, i.admin), (BOB_KEY, i.bob)):
        await _insert(
            conn,
            "api_keys",
            {
                "id": uuid.uuid4(),
                "user_id": user,
                "name": "cli",
                "key_hash": hash_token(key),
                "prefix": display_prefix(key),
                "created_at": t,
                "revoked_at": None,
            },
        )
    await _insert(
        conn,
        "teams",
        {"id": i.team, "name": "Payments", "description": "", "created_at": t, "updated_at": t},
    )
    await _insert(
        conn,
        "team_members",
        {"team_id": i.team, "user_id": i.bob, "role": "responder", "created_at": t},
    )
    await _insert(
        conn,
        "team_tags",
        {
            "id": uuid.uuid4(),
            "team_id": i.team,
            "key": "area",
            "value": "payments",
            "created_at": t,
        },
    )
    await _insert(
        conn,
        "escalation_policies",
        {
            "id": i.policy,
            "team_id": i.team,
            "name": "Bob, then Bob",
            "description": "",
            "is_default": True,
            "repeat_count": 1,
            "is_active": True,
            "created_at": t,
            "updated_at": t,
            "ack_timeout_minutes": None,
        },
    )
    await _insert(
        conn,
        "escalation_levels",
        {
            "id": i.level,
            "policy_id": i.policy,
            "level_number": 1,
            "target_type": "user",
            "target_id": i.bob,
            "timeout_minutes": 30,
        },
    )
    await _insert(
        conn,
        "escalation_levels",
        {
            "id": uuid.uuid4(),
            "policy_id": i.policy,
            "level_number": 2,
            "target_type": "schedule",
            "target_id": i.schedule,
            "timeout_minutes": 30,
        },
    )
    await _insert(
        conn,
        "services",
        {
            "id": i.service,
            "name": "Payments API",
            "description": "",
            "routing_key": "payments-api",
            "team_id": i.team,
            "escalation_policy_id": i.policy,
            "status": "active",
            "created_at": t,
            "updated_at": t,
            "urgency": "severity_based",
        },
    )
    await _insert(
        conn,
        "schedules",
        {
            "id": i.schedule,
            "team_id": i.team,
            "name": "Primary",
            "description": "",
            "time_zone": "Europe/Berlin",
            "created_at": t,
            "updated_at": t,
        },
    )
    await _insert(
        conn,
        "schedule_layers",
        {
            "id": i.layer,
            "schedule_id": i.schedule,
            "position": 0,
            "name": "weekly",
            "start": t,
            "end": None,
            "rotation": "weekly",
            "turn_length": 1,
            # A wall-clock time in the schedule's zone, stored without one.
            "handoff": "2026-01-05 09:00:00.000000"
            if conn.dialect.name == "sqlite"
            else datetime(2026, 1, 5, 9, 0),  # noqa: DTZ001
            "restrictions": [],
            "created_at": t,
            "updated_at": t,
        },
    )
    await _insert(
        conn, "schedule_participants", {"layer_id": i.layer, "position": 0, "user_id": i.bob}
    )
    await _insert(
        conn,
        "schedule_overrides",
        {
            "id": i.override,
            "schedule_id": i.schedule,
            "start": NOW + timedelta(days=1),
            "end": NOW + timedelta(days=2),
            "created_by": i.admin,
            "created_at": t,
        },
    )
    await _insert(conn, "schedule_override_users", {"override_id": i.override, "user_id": i.admin})
    await _insert(
        conn,
        "integrations",
        {
            "id": i.integration,
            "name": "monitoring",
            "type": "generic",
            "key_hash": hash_token(INTEGRATION_KEY),
            "key_prefix": display_prefix(INTEGRATION_KEY),
            "active": True,
            "default_service_id": i.service,
            "dedup_window_minutes": 60,
            "auto_resolve": True,
            "created_at": t,
            "updated_at": t,
            "options": {},
            "templates": {},
            "rate_limit_per_minute": None,
        },
    )
    if conn.dialect.name == "postgresql":
        number = (await conn.execute(sa.text("SELECT nextval('incident_number_seq')"))).scalar()
    else:
        number = 1
    await _insert(
        conn,
        "incidents",
        {
            "id": i.incident,
            "number": number,
            "integration_id": i.integration,
            "fingerprint": "disk-7",
            "dedup_open": True,
            "title": "Disk full on db-7",
            "description": "",
            "status": "open",
            "priority": "critical",
            "team_id": i.team,
            "escalation_policy_id": i.policy,
            "service_id": i.service,
            "current_level": 1,
            "current_repeat": 0,
            "assigned_user_id": None,
            "alert_count": 1,
            "created_at": OPENED,
            "updated_at": OPENED,
            "acknowledged_at": None,
            "resolved_at": None,
            "closed_at": None,
            "last_escalated_at": OPENED,
        },
    )
    await _insert(
        conn,
        "alerts",
        {
            "id": i.alert,
            "integration_id": i.integration,
            "incident_id": i.incident,
            "fingerprint": "disk-7",
            "title": "Disk full on db-7",
            "description": "",
            "severity": "critical",
            "status": "firing",
            "source": "db-7",
            "dedup_key": "disk-7",
            "routing_key": "payments-api",
            "tags": {"env": "prod"},
            "details": {"used": "99%"},
            "routed": True,
            "received_at": OPENED,
        },
    )
    for kind, actor_type, actor_id, note in (
        ("created", "integration", i.integration, "opened by an alert"),
        ("paged", "system", None, "paged Bob (level 1)"),
        ("notification_sent", "system", None, "email notification via email sent"),
    ):
        await _insert(
            conn,
            "incident_events",
            {
                "id": new_ordered_id(),  # timeline ids grow, as that release made them
                "incident_id": i.incident,
                "at": OPENED,
                "kind": kind,
                "actor_type": actor_type,
                "actor_id": actor_id,
                "old_status": None,
                "new_status": "open" if kind == "created" else None,
                "note": note,
                "data": {},
            },
        )
    snapshot = {
        "name": "Bob, then Bob",
        "repeat_count": 1,
        "ack_timeout_minutes": None,
        "levels": [
            {
                "level_number": 1,
                "target_type": "user",
                "target_id": str(i.bob),
                "timeout_minutes": 30,
            },
            {
                "level_number": 2,
                "target_type": "schedule",
                "target_id": str(i.schedule),
                "timeout_minutes": 30,
            },
        ],
    }
    await _insert(
        conn,
        "incident_escalations",
        {
            "incident_id": i.incident,
            "policy_id": i.policy,
            "policy_snapshot": snapshot,
            "state": "escalating",
            "level": 1,
            "repeat": 0,
            "seq": 1,
            "updated_at": OPENED,
        },
    )
    timer = {
        "incident_id": i.incident,
        "scheduled_repeat": 0,
        "cancelled_at": None,
        "created_at": OPENED,
        "claimed_by": None,
        "lease_until": None,
    }
    await _insert(
        conn,
        "escalation_jobs",
        {
            **timer,
            "id": i.start_timer,
            "scheduled_level": 1,
            "scheduled_for": OPENED,
            "completed": True,
            "executed_at": OPENED,
            "kind": "start",
            "escalation_seq": 0,
            "attempts": 1,
            "outcome": "fired",
        },
    )
    await _insert(
        conn,
        "escalation_jobs",
        {
            **timer,
            "id": i.level_timer,
            "scheduled_level": 2,
            "scheduled_for": OPENED + timedelta(minutes=30),
            "completed": False,
            "executed_at": None,
            "kind": "level",
            "escalation_seq": 1,
            "attempts": 0,
            "outcome": None,
        },
    )
    await _insert(
        conn,
        "pages",
        {
            "id": i.page,
            "incident_id": i.incident,
            "user_id": i.bob,
            "job_id": i.start_timer,
            "level_number": 1,
            "repeat": 0,
            "escalation_seq": 1,
            "via": "user",
            "schedule_id": None,
            "layer_id": None,
            "override_id": None,
            "created_at": OPENED,
        },
    )
    await _insert(
        conn,
        "contact_methods",
        {
            "id": i.method,
            "user_id": i.bob,
            "kind": "email",
            "name": "work",
            "address": "bob@example.com",
            "signing_secret": None,
            "verified_at": t,
            "verification_code_hash": None,
            "verification_expires_at": None,
            "verification_failures": 0,
            "created_at": t,
            "updated_at": t,
        },
    )
    await _insert(
        conn,
        "notification_rules",
        {
            "id": i.rule,
            "user_id": i.bob,
            "urgency": "high",
            "delay_minutes": 0,
            "contact_method_id": i.method,
            "created_at": t,
        },
    )
    await _insert(
        conn,
        "deliveries",
        {
            "id": i.delivery,
            "kind": "page",
            "idempotency_key": f"page:{i.page}:rule:{i.rule}",
            "incident_id": i.incident,
            "page_id": i.page,
            "user_id": i.bob,
            "contact_method_id": i.method,
            "rule_id": i.rule,
            "contact_kind": "email",
            "address": "bob@example.com",
            "status": "sent",
            "due_at": OPENED,
            "attempts": 1,
            "lease_owner": None,
            "lease_expires_at": None,
            "channel": "email",
            "provider_id": None,
            "last_error": None,
            "bundled_into_id": None,
            "bundle_size": 1,
            "payload": {},
            "sent_at": OPENED,
            "created_at": OPENED,
            "updated_at": OPENED,
        },
    )
    await _insert(
        conn,
        "delivery_attempts",
        {
            "id": i.attempt,
            "delivery_id": i.delivery,
            "number": 1,
            "status": "sent",
            "channel": "email",
            "worker_id": "old-worker",
            "provider_id": None,
            "error": None,
            "started_at": OPENED,
            "finished_at": OPENED,
        },
    )


async def test_a_database_of_the_previous_release_upgrades_with_its_data_usable(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await asyncio.to_thread(upgrade, url, PREVIOUS_RELEASE)
    await fill_previous_release(url)
    await asyncio.to_thread(upgrade, url)

    clock = FrozenClock(NOW)
    settings = Settings(database_url=url, secret_key="k", public_url="http://test")
    app = create_app(settings, clock=clock, run_worker=False)
    bob = {"Authorization": f"Bearer {BOB_KEY}"}
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert me.status_code == 200, me.text
        assert me.json()["is_admin"] is True
        # Keys made before scopes existed keep doing everything they did.
        keys = await client.get(
            f"/api/v1/users/{me.json()['id']}/api-keys",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert {(k["scope"], k["team_id"], k["expires_at"]) for k in keys.json()["items"]} == {
            ("full", None, None)
        }

        incident = (await client.get(f"/api/v1/incidents/{Ids.incident}", headers=bob)).json()
        assert (incident["title"], incident["status"], incident["alert_count"]) == (
            "Disk full on db-7",
            "open",
            1,
        )
        assert [a["dedup_key"] for a in incident["alerts"]] == ["disk-7"]
        assert [e["kind"] for e in incident["timeline"]][:3] == [
            "created",
            "paged",
            "notification_sent",
        ]
        pages = (await client.get(f"/api/v1/incidents/{Ids.incident}/pages", headers=bob)).json()
        assert [p["user_id"] for p in pages] == [str(Ids.bob)]
        deliveries = await client.get(f"/api/v1/incidents/{Ids.incident}/deliveries", headers=bob)
        assert deliveries.status_code == 200, deliveries.text
        assert "sent" in deliveries.text

        oncall = await client.get(f"/api/v1/schedules/{Ids.schedule}/oncall", headers=bob)
        assert oncall.status_code == 200, oncall.text
        assert str(Ids.bob) in oncall.text
        services = (await client.get("/api/v1/services", headers=bob)).json()
        assert [s["routing_key"] for s in services["items"]] == ["payments-api"]

        # The old integration key still takes alerts, and the same dedup key joins the
        # incident the old release opened.
        again = await client.post(
            f"/webhooks/{INTEGRATION_KEY}",
            json={"title": "Disk still full", "dedup_key": "disk-7"},
        )
        assert again.status_code == 202, again.text
        assert again.json()["incident_id"] == str(Ids.incident)
        assert again.json()["deduplicated"] is True

        acked = await client.post(f"/api/v1/incidents/{Ids.incident}/acknowledge", headers=bob)
        assert acked.status_code == 200, acked.text
        assert acked.json()["status"] == "acknowledged"

    # The level-2 timer the old release left pending was cancelled by the acknowledgement:
    # when its time comes, nobody is paged.
    clock.advance(timedelta(hours=1))
    engine = create_engine(url)
    try:
        ctx = WorkerContext(engine, clock, settings, worker_id="after-upgrade")
        while await fire_due_escalations(ctx):
            pass
        async with engine.connect() as conn:
            pages_now = (await conn.execute(sa.text("SELECT count(*) FROM pages"))).scalar_one()
            version = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar()
    finally:
        await engine.dispose()
    assert pages_now == 1
    assert version == HEAD


@pytest.mark.skipif(not POSTGRES_URL, reason="TOCSIN_TEST_POSTGRES_URL not set")
@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
async def test_nodes_upgrading_at_the_same_moment_all_succeed(empty_database_url: str) -> None:
    """Containers started together each run `tocsin db upgrade` on the same PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_DATABASE_URL"] = empty_database_url
    env["TOCSIN_SECRET_KEY"] = "upgrade-test-key"
    nodes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tocsin.cli",
            "db",
            "upgrade",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [(await node.communicate())[0].decode() for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], outputs
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await engine.dispose()
    assert version == [(HEAD,)]
