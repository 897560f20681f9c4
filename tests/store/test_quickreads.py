"""The ingest path's point reads run on the driver (tocsin.store.quickreads) and must read
exactly what SQLAlchemy reads: ids, enums, JSON, booleans, NULLs, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import FrozenClock
from tests.factories import Cast, make_integration, make_policy, make_service, make_team
from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.catalog.models import ServiceStatus
from tocsin.integrations.lookup import find_active_integration
from tocsin.integrations.models import IntegrationType
from tocsin.routing.route import RouteReason, route_alert
from tocsin.store.quickreads import QuickReads


@pytest.fixture
async def reads(engine: AsyncEngine) -> AsyncIterator[QuickReads]:
    quick = QuickReads(engine)
    assert quick.driver is not None, "both test backends have a driver path"
    yield quick
    await quick.dispose()


async def test_an_integration_reads_the_same_on_the_driver_as_through_sqlalchemy(
    engine: AsyncEngine, clock: FrozenClock, cast: Cast, reads: QuickReads
) -> None:
    service = await make_service(engine, clock.now(), team_id=cast.payments, routing_key="pay")
    ref = await make_integration(
        engine,
        clock.now(),
        type=IntegrationType.ALERTMANAGER,
        default_service_id=service,
        dedup_window_minutes=7,
        auto_resolve=False,
        options={"group_mode": "per_alert", "nested": {"n": [1, 2]}},
        templates={"title": "{{ payload.x }}"},
        rate_limit_per_minute=90,
    )
    bare = await make_integration(engine, clock.now(), name="bare")
    for key in (ref.key, bare.key):
        async with engine.connect() as conn:
            expected = await find_active_integration(conn, key)
        async with reads.connect() as conn:
            got = await find_active_integration(conn, key)
        assert expected is not None
        assert got == expected
        assert type(got.type) is IntegrationType
    async with reads.connect() as conn:
        assert (await find_active_integration(conn, "ik_no_such_key")) is None


async def test_an_inactive_integration_is_not_found_on_the_driver(
    engine: AsyncEngine, clock: FrozenClock, reads: QuickReads
) -> None:
    ref = await make_integration(engine, clock.now(), active=False)
    async with reads.connect() as conn:
        assert (await find_active_integration(conn, ref.key)) is None


@pytest.mark.parametrize("service_policy", ["active", "inactive", "none"])
async def test_routes_read_the_same_on_the_driver_as_through_sqlalchemy(
    engine: AsyncEngine, clock: FrozenClock, cast: Cast, reads: QuickReads, service_policy: str
) -> None:
    now = clock.now()
    default = await make_policy(engine, now, team_id=cast.payments)
    own = None
    if service_policy != "none":
        own = await make_policy(
            engine,
            now,
            team_id=cast.payments,
            name="own",
            is_default=False,
            is_active=service_policy == "active",
        )
    service = await make_service(
        engine, now, team_id=cast.payments, routing_key="pay", policy_id=own
    )
    await make_service(
        engine, now, team_id=cast.payments, routing_key="gone", status=ServiceStatus.ARCHIVED
    )
    ref = await make_integration(engine, now, default_service_id=service)
    bare = await make_integration(engine, now, name="bare")
    tagged = await make_team(engine, now, name="Storage", tags={"layer": "disk"})
    async with engine.connect() as conn:
        integration = await find_active_integration(conn, ref.key)
        no_default = await find_active_integration(conn, bare.key)
    assert integration is not None and no_default is not None
    cases = {
        "by routing key": (_alert(routing_key="pay"), integration, RouteReason.ROUTING_KEY),
        "archived key, then the default service": (
            _alert(routing_key="gone"),
            integration,
            RouteReason.DEFAULT_SERVICE,
        ),
        "default service": (_alert(), integration, RouteReason.DEFAULT_SERVICE),
        # Tag routing is not driver-ready: the same connection runs it through SQLAlchemy.
        "team tags": (_alert(tags={"layer": "disk"}), no_default, RouteReason.TEAM_TAGS),
    }
    for label, (alert, via, reason) in cases.items():
        async with engine.connect() as conn:
            expected = await route_alert(conn, alert, via)
        async with reads.connect() as conn:
            got = await route_alert(conn, alert, via)
        assert got == expected, label
        assert got is not None and got.reason == reason, label
        if reason == RouteReason.TEAM_TAGS:
            assert (got.team_id, got.service_id, got.escalation_policy_id) == (tagged, None, None)
        else:
            assert got.service_id == service
            assert got.escalation_policy_id == (own if service_policy == "active" else default)
    async with reads.connect() as conn:
        assert await route_alert(conn, _alert(routing_key="nowhere"), no_default) is None


def _alert(**fields: Any) -> NormalisedAlert:
    return NormalisedAlert(title="x", severity=Severity.HIGH, **fields)
