"""A delivery that fails is logged, with the incident it was for (and never its address)."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient

from tests.notifications.conftest import HttpReceiver, Paging, open_incident
from tests.notifications.helpers import add_rule, add_verified_webhook
from tests.telemetry.capture import json_log_lines
from tocsin.clock import FrozenClock
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.worker.context import WorkerContext


async def test_a_failed_delivery_is_logged_with_its_incident(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob-secret-path")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    receiver.script = [503]
    incident_id = await open_incident(client, paging)
    with json_log_lines() as log:
        assert await send_due_deliveries(ctx)
        clock.advance(timedelta(minutes=1))
        assert await send_due_deliveries(ctx)
    [failed] = log.containing("will be retried")
    assert failed["level"] == "warning"
    assert failed["incident_id"] == incident_id
    assert "503" in failed["message"]
    ours = [entry for entry in log.entries if entry["logger"].startswith("tocsin")]
    assert all("bob-secret-path" not in entry["message"] for entry in ours)
    assert not log.containing("failed for good")
