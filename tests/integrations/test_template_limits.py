"""A template that would loop for ever or build a huge value is cut off by its budget, the
alert is stored with the adapter's value, its page goes out, and the payload log says why."""

from __future__ import annotations

import time

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Escalate
from tests.factories import World
from tests.integrations.adapter_support import integration_of
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType
from tocsin.integrations.templates import OverBudget, _compiled, render_limited

FOREVER = "{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"
SILENT = "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"
HUGE = "{{ 'x' * 1000000000 }}"
POWER = "{{ 9 ** 999999 }}"
WIDE = "{% for i in range(9000) %}{{ 'y' * 9 }}{% endfor %}"


@pytest.mark.parametrize("source", [FOREVER, SILENT, HUGE, POWER, WIDE])
def test_a_runaway_template_is_stopped_with_a_clear_error(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(OverBudget) as refused:
        render_limited(_compiled(source), {"payload": {}, "alert": {}})
    assert time.monotonic() - started < 2
    assert str(refused.value)  # says which budget


def test_an_ordinary_template_renders_as_before() -> None:
    source = "{% for i in range(3) %}{{ payload.name }}-{{ i }} {% endfor %}"
    assert render_limited(_compiled(source), {"payload": {"name": "db"}}) == "db-0 db-1 db-2 "


async def test_the_alert_is_stored_and_paged_though_its_template_ran_away(
    client: AsyncClient,
    world: World,
    engine: AsyncEngine,
    clock: FrozenClock,
    escalate: Escalate,
) -> None:
    generic = await integration_of(
        engine,
        clock,
        world,
        IntegrationType.GENERIC,
        templates={"title": FOREVER, "dedup_key": SILENT},
    )
    started = time.monotonic()
    response = await client.post(
        generic.url, json={"title": "Disk full", "routing_key": "payments-api"}
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.text
    incident_id = response.json()["incident_id"]
    await escalate()
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    assert detail.json()["title"] == "Disk full"
    assert "paged" in [e["kind"] for e in detail.json()["timeline"]]
    log = await client.get(
        f"/api/v1/integrations/{generic.id}/payloads", headers=world.cast.admin.headers
    )
    problems = str(log.json())
    assert "OverBudget" in problems and "more than" in problems
