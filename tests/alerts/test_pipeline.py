"""The ingest pipeline stores what one payload became as one unit: all of it or nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World
from tocsin.alerts.ingest import PreparedAlert, Submission, commit_submission, prepare
from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.clock import FrozenClock
from tocsin.integrations.lookup import IntegrationInfo, find_active_integration
from tocsin.runtime import Runtime


async def _prepared(
    engine: AsyncEngine, world: World, titles: list[str]
) -> tuple[IntegrationInfo, list[PreparedAlert]]:
    async with engine.connect() as conn:
        integration = await find_active_integration(conn, world.integration.key)
        assert integration is not None
        prepared = [
            await prepare(
                conn,
                integration,
                NormalisedAlert(title=t, severity=Severity.HIGH, routing_key="payments-api"),
            )
            for t in titles
        ]
    return integration, prepared


def _of_a_deleted_integration(prepared: PreparedAlert) -> PreparedAlert:
    """An alert whose row the database refuses: its integration does not exist."""
    gone = dataclasses.replace(prepared.integration, id=uuid.uuid4())
    return dataclasses.replace(prepared, integration=gone)


async def test_a_payload_whose_third_alert_fails_leaves_nothing_stored(
    world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    integration, prepared = await _prepared(engine, world, ["one", "two", "three"])
    bad = [prepared[0], prepared[1], _of_a_deleted_integration(prepared[2])]
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await commit_submission(
                conn, Submission(integration, alerts=tuple(bad)), now=clock.now()
            )
    assert await count_rows(engine, "alerts") == 0
    assert await count_rows(engine, "incidents") == 0
    assert await count_rows(engine, "incident_events") == 0


async def test_a_failing_payload_in_a_shared_batch_does_not_fail_its_neighbours(
    app: Any, client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    state: Runtime = app.state.tocsin
    integration, prepared = await _prepared(engine, world, ["a1", "a2", "b1", "b2", "b3"])
    good = Submission(integration, alerts=(prepared[0], prepared[1]))
    bad = Submission(
        integration, alerts=(prepared[2], prepared[3], _of_a_deleted_integration(prepared[4]))
    )
    results = await asyncio.gather(
        state.batcher.submit(good), state.batcher.submit(bad), return_exceptions=True
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], BaseException)
    assert len(results[0].alerts) == 2
    assert await count_rows(engine, "alerts") == 2
    assert await count_rows(engine, "incidents") == 2


async def test_one_submission_of_many_alerts_opens_one_incident_per_fingerprint(
    world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    integration, prepared = await _prepared(engine, world, ["disk", "disk", "cpu", "disk"])
    async with engine.begin() as conn:
        outcome = await commit_submission(
            conn, Submission(integration, alerts=tuple(prepared)), now=clock.now()
        )
    disk = {a.incident_id for n, a in enumerate(outcome.alerts) if n != 2}
    assert len(disk) == 1
    assert outcome.alerts[2].incident_id not in disk
    assert [a.deduplicated for a in outcome.alerts] == [False, True, False, True]
    assert await count_rows(engine, "incidents") == 2
