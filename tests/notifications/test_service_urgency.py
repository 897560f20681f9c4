"""A service's urgency decides which of a person's notification rules its incidents use:
severity based by default, or always high, or always low, whatever the severity."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_policy, make_team
from tests.notifications.conftest import HttpReceiver, Paging, open_incident
from tests.notifications.helpers import add_rule, add_verified_webhook, drain
from tocsin.alerts.models import Severity
from tocsin.catalog.models import ServiceUrgency
from tocsin.clock import FrozenClock
from tocsin.escalation.models import TargetType
from tocsin.notifications.dispatch import urgency_of
from tocsin.notifications.models import Urgency
from tocsin.teams.models import TeamRole
from tocsin.worker.context import WorkerContext

HIGH, LOW = Urgency.HIGH, Urgency.LOW


@pytest.mark.parametrize(
    ("severity", "service_urgency", "expected"),
    [
        (Severity.CRITICAL, ServiceUrgency.SEVERITY_BASED, HIGH),
        (Severity.HIGH, ServiceUrgency.SEVERITY_BASED, HIGH),
        (Severity.MEDIUM, ServiceUrgency.SEVERITY_BASED, LOW),
        (Severity.LOW, ServiceUrgency.SEVERITY_BASED, LOW),
        (Severity.INFO, ServiceUrgency.SEVERITY_BASED, LOW),
        (Severity.CRITICAL, ServiceUrgency.LOW, LOW),
        (Severity.HIGH, ServiceUrgency.LOW, LOW),
        (Severity.INFO, ServiceUrgency.LOW, LOW),
        (Severity.INFO, ServiceUrgency.HIGH, HIGH),
        (Severity.MEDIUM, ServiceUrgency.HIGH, HIGH),
        (Severity.CRITICAL, ServiceUrgency.HIGH, HIGH),
    ],
)
def test_the_service_urgency_overrides_the_severity_unless_severity_based(
    severity: Severity, service_urgency: ServiceUrgency, expected: Urgency
) -> None:
    assert urgency_of(severity, service_urgency) is expected


def test_without_a_service_urgency_it_goes_by_severity() -> None:
    assert urgency_of(Severity.CRITICAL) is HIGH
    assert urgency_of(Severity.INFO) is LOW


@dataclass(frozen=True)
class Hooks:
    """Bob's two verified webhooks: his high-urgency rule uses one, his low-urgency rule the
    other, both at once, so the path a page arrives on tells which rule it used."""

    receiver: HttpReceiver
    first: int  # requests before any incident (the verification codes)

    def paths(self) -> list[str]:
        return [r.path for r in self.receiver.requests[self.first :]]


@pytest.fixture
async def hooks(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, receiver: HttpReceiver
) -> Hooks:
    bob = paging.world.cast.bob
    high = await add_verified_webhook(client, ctx, receiver, bob, "/high")
    low = await add_verified_webhook(client, ctx, receiver, bob, "/low")
    for urgency, method in (("high", high), ("low", low)):
        added = await add_rule(client, bob, method_id=method["id"], urgency=urgency, delay=0)
        assert added.status_code == 201, added.text
    return Hooks(receiver, len(receiver.requests))


async def set_service_urgency(client: AsyncClient, paging: Paging, urgency: str) -> None:
    response = await client.patch(
        f"/api/v1/services/{paging.service}",
        headers=paging.world.cast.alice.headers,
        json={"urgency": urgency},
    )
    assert response.status_code == 200, response.text
    assert response.json()["urgency"] == urgency


async def test_a_low_urgency_services_critical_incident_uses_the_low_urgency_rule(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, hooks: Hooks
) -> None:
    await set_service_urgency(client, paging, "low")
    await open_incident(client, paging, title="Nightly export failed", severity="critical")
    await drain(ctx)
    assert hooks.paths() == ["/low"]


async def test_a_high_urgency_services_info_incident_uses_the_high_urgency_rule(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, hooks: Hooks
) -> None:
    await set_service_urgency(client, paging, "high")
    await open_incident(client, paging, title="Card declines rising", severity="info")
    await drain(ctx)
    assert hooks.paths() == ["/high"]


async def test_by_default_a_service_pages_by_severity(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, hooks: Hooks
) -> None:
    service = await client.get(
        f"/api/v1/services/{paging.service}", headers=paging.world.cast.bob.headers
    )
    assert service.json()["urgency"] == "severity_based"
    await open_incident(client, paging, title="Checkout down", severity="critical")
    await drain(ctx)
    assert hooks.paths() == ["/high"]
    await open_incident(client, paging, title="Checkout slow", severity="info")
    await drain(ctx)
    assert hooks.paths() == ["/high", "/low"]


async def test_switching_back_to_severity_based_pages_by_severity_again(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, hooks: Hooks
) -> None:
    await set_service_urgency(client, paging, "low")
    await set_service_urgency(client, paging, "severity_based")
    await open_incident(client, paging, title="Checkout down", severity="critical")
    await drain(ctx)
    assert hooks.paths() == ["/high"]


async def test_an_incident_without_a_service_pages_by_severity(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    hooks: Hooks,
    engine: AsyncEngine,
    clock: FrozenClock,
) -> None:
    # Every service being low urgency must not leak onto an incident that has none.
    await set_service_urgency(client, paging, "low")
    bob = paging.world.cast.bob
    storage = await make_team(
        engine,
        clock.now(),
        name="Storage",
        members={bob.id: TeamRole.RESPONDER},
        tags={"component": "disk"},
    )
    await make_policy(engine, clock.now(), team_id=storage, targets=[(TargetType.USER, bob.id)])
    sent = await client.post(
        paging.world.integration.url,
        json={"title": "Disk full", "severity": "critical", "tags": {"component": "disk"}},
    )
    assert sent.status_code == 202, sent.text
    incident = await client.get(
        f"/api/v1/incidents/{sent.json()['incident_id']}", headers=bob.headers
    )
    assert incident.json()["service_id"] is None
    assert incident.json()["team_id"] == str(storage)
    await drain(ctx)
    assert hooks.paths() == ["/high"]
