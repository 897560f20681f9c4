"""What teammates see of someone else's deliveries: that a page went out and how (kind and
last four characters), never the address, which is often a secret (a webhook URL's token, an
Apprise URL's chat token) or personal (a phone number)."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.notifications.conftest import HttpReceiver, Paging, open_incident
from tests.notifications.helpers import bob_paged_by_webhook, deliveries_seen_by, drain
from tocsin.notifications.models import Delivery, DeliveryAttempt
from tocsin.worker.context import WorkerContext

SECRET_PATH = "/hooks/T0KEN-abcdef1234567890/bob"


async def test_teammates_see_a_delivery_as_kind_and_last_four_characters_only(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, receiver: HttpReceiver
) -> None:
    cast = paging.world.cast
    await bob_paged_by_webhook(client, paging, ctx, receiver, SECRET_PATH)
    incident_id = await open_incident(client, paging)
    await drain(ctx)

    for viewer in (cast.alice, cast.olive):  # the manager, the observer
        [seen] = await deliveries_seen_by(client, incident_id, viewer)
        assert seen["address"] == "webhook …/bob"
        assert seen["address_masked"] is True
        assert "T0KEN" not in str(seen)
    for viewer in (cast.bob, cast.admin):  # the recipient, an administrator
        [seen] = await deliveries_seen_by(client, incident_id, viewer)
        assert seen["address"] == receiver.base_url + SECRET_PATH
        assert seen["address_masked"] is False
    outsider = await client.get(
        f"/api/v1/incidents/{incident_id}/deliveries", headers=cast.mallory.headers
    )
    assert outsider.status_code == 403


async def test_errors_stored_before_they_were_cut_down_are_shown_short(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    engine: AsyncEngine,
) -> None:
    cast = paging.world.cast
    await bob_paged_by_webhook(client, paging, ctx, receiver, "/bob")
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    # What an older version kept: the first part of the receiver's reply.
    old = "webhook answered 500: <html>db password hunter2 at https://10.0.0.5/admin?k=s3cr3t"
    async with engine.begin() as conn:
        await conn.execute(update(Delivery).values(last_error=old))
        await conn.execute(update(DeliveryAttempt).values(error=old + " " + "x" * 400))
    [seen] = await deliveries_seen_by(client, incident_id, cast.bob)
    for error in (seen["last_error"], seen["attempt_log"][0]["error"]):
        assert "https://" not in error and "s3cr3t" not in error
        assert len(error) <= 200
