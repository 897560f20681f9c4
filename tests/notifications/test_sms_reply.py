"""Twilio's inbound SMS webhook: reply codes act as the person whose verified number sent
them; the signature is checked first."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.notifications.conftest import TWILIO_TOKEN, Paging, open_incident
from tests.notifications.helpers import add_method, drain, remove_from_team
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.notifications.actions import twilio_signature
from tocsin.notifications.models import ContactMethod
from tocsin.worker.context import WorkerContext

URL = "/api/v1/notifications/twilio/sms"
PHONE = "+14155550100"


async def reply(
    client: AsyncClient, body: str, *, phone: str = PHONE, token: str = TWILIO_TOKEN
) -> tuple[int, str]:
    params = {"From": phone, "To": "+15005550006", "Body": body, "MessageSid": "SMx"}
    signature = twilio_signature(token, "http://test" + URL, params.items())
    response = await client.post(
        URL,
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    found = re.search(r"<Message>(.*)</Message>", response.text)
    return response.status_code, found.group(1) if found else response.text


async def bob_has_a_verified_phone(
    client: AsyncClient, paging: Paging, engine: AsyncEngine, clock: FrozenClock
) -> None:
    method = await add_method(client, paging.world.cast.bob, kind="sms", address=PHONE)
    # Verification by SMS is covered with the Twilio channel; here the number is trusted.
    async with engine.begin() as conn:
        await conn.execute(
            update(ContactMethod)
            .where(ContactMethod.id == uuid.UUID(method["id"]))
            .values(verified_at=clock.now())
        )


async def status_of(client: AsyncClient, paging: Paging, incident_id: str) -> str:
    detail = await client.get(
        f"/api/v1/incidents/{incident_id}", headers=paging.world.cast.bob.headers
    )
    status: str = detail.json()["status"]
    return status


async def test_replying_4_acknowledges_the_only_open_incident(
    client: AsyncClient,
    paging: Paging,
    engine: AsyncEngine,
    clock: FrozenClock,
    ctx: WorkerContext,
    settings: Settings,
) -> None:
    settings.twilio_auth_token = TWILIO_TOKEN  # the app's settings object
    await bob_has_a_verified_phone(client, paging, engine, clock)
    incident_id = await open_incident(client, paging, title="Queue stuck")
    await drain(ctx)
    status, text = await reply(client, "4")
    assert status == 200
    assert "#1 acknowledged" in text
    assert await status_of(client, paging, incident_id) == "acknowledged"
    status, text = await reply(client, "6")
    assert "#1 resolved" in text
    assert await status_of(client, paging, incident_id) == "resolved"


async def test_with_several_open_incidents_the_number_is_needed(
    client: AsyncClient,
    paging: Paging,
    engine: AsyncEngine,
    clock: FrozenClock,
    ctx: WorkerContext,
    settings: Settings,
) -> None:
    settings.twilio_auth_token = TWILIO_TOKEN
    await bob_has_a_verified_phone(client, paging, engine, clock)
    first = await open_incident(client, paging, title="One")
    second = await open_incident(client, paging, title="Two")
    await drain(ctx)
    _, text = await reply(client, "4")
    assert "2 open incidents (#1, #2)" in text
    assert await status_of(client, paging, first) == "open"
    _, text = await reply(client, "4 2")
    assert "#2 acknowledged" in text
    assert await status_of(client, paging, second) == "acknowledged"
    assert await status_of(client, paging, first) == "open"
    _, text = await reply(client, "4 99")
    assert "#99 is not an open incident" in text


async def test_a_wrong_signature_or_an_unknown_number_changes_nothing(
    client: AsyncClient,
    paging: Paging,
    engine: AsyncEngine,
    clock: FrozenClock,
    ctx: WorkerContext,
    settings: Settings,
) -> None:
    settings.twilio_auth_token = TWILIO_TOKEN
    await bob_has_a_verified_phone(client, paging, engine, clock)
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    status, _ = await reply(client, "4", token="not-the-token")
    assert status == 403
    status, text = await reply(client, "4", phone="+14155550999")
    assert status == 200 and "not a verified contact method" in text
    assert await status_of(client, paging, incident_id) == "open"


async def test_a_reply_from_someone_who_left_the_team_does_nothing(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    engine: AsyncEngine,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    settings.twilio_auth_token = TWILIO_TOKEN  # the app's settings object
    await bob_has_a_verified_phone(client, paging, engine, clock)
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    cast = paging.world.cast
    await remove_from_team(engine, cast.payments, cast.bob.id)
    status, answer = await reply(client, "4")
    assert status == 200
    assert "no longer a member" in answer
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=cast.alice.headers)
    assert detail.json()["status"] == "open"
