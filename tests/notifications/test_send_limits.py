"""Verification codes and test messages are limited per contact method and per user each
hour (toll fraud: an SMS or a call costs money), answered 429 with Retry-After; wrong codes
are limited too, and asking for a new code does not reset them. The counts are in the
database, so every API process sees the same ones."""

from __future__ import annotations

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import Cast, Person
from tests.notifications.conftest import SmtpServer
from tests.notifications.helpers import (
    add_method,
    add_verified_email,
    app_client,
    drain,
    last_code_in,
    verify,
)
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.worker.context import WorkerContext


def _methods(person: Person) -> str:
    return f"/api/v1/users/{person.id}/contact-methods"


async def _resend(client: AsyncClient, person: Person, method_id: str) -> int:
    response = await client.post(
        f"{_methods(person)}/{method_id}/send-verification", headers=person.headers
    )
    return response.status_code


async def test_a_sixth_code_in_an_hour_is_refused_with_retry_after(
    client: AsyncClient, cast: Cast, clock: FrozenClock, engine: AsyncEngine
) -> None:
    method = await add_method(client, cast.bob, kind="sms", address="+14155550100")  # code 1
    for _ in range(4):  # codes 2 to 5
        clock.advance(timedelta(minutes=5))
        assert await _resend(client, cast.bob, method["id"]) == 202
    refused = await client.post(
        f"{_methods(cast.bob)}/{method['id']}/send-verification", headers=cast.bob.headers
    )
    assert refused.status_code == 429
    # The first code was sent 20 minutes ago: it leaves the hour in 40.
    assert refused.headers["retry-after"] == str(40 * 60)
    assert "in the last hour" in refused.json()["detail"]
    assert await count_rows(engine, "deliveries") == 5

    clock.advance(timedelta(minutes=40))
    assert await _resend(client, cast.bob, method["id"]) == 202


async def test_test_messages_count_against_the_same_limit(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    method = await add_verified_email(client, ctx, smtp.box, cast.bob, "bob@pager.example.com")
    url = f"{_methods(cast.bob)}/{method['id']}/test"
    statuses = [(await client.post(url, headers=cast.bob.headers)).status_code for _ in range(5)]
    # The verification code was the first of five.
    assert statuses == [202, 202, 202, 202, 429]


async def test_a_user_may_not_spread_codes_over_many_methods(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    for n in range(10):
        await add_method(client, cast.bob, kind="sms", address=f"+1415555010{n}")
    refused = await client.post(
        _methods(cast.bob),
        json={"kind": "voice", "name": "one more", "address": "+14155550199"},
        headers=cast.bob.headers,
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 3600
    assert "this user's contact methods" in refused.json()["detail"]
    # Refused whole: no method without its code.
    assert await count_rows(engine, "contact_methods") == 10
    # Someone else's limit is their own.
    await add_method(client, cast.alice, kind="sms", address="+14155550100")


async def test_the_limits_are_settings(
    database_url: str, settings: Settings, clock: FrozenClock, cast: Cast
) -> None:
    tight = settings.model_copy(update={"contact_sends_per_method_per_hour": 2})
    async with app_client(tight, clock) as client:
        method = await add_method(client, cast.bob, kind="sms", address="+14155550100")
        assert await _resend(client, cast.bob, method["id"]) == 202
        assert await _resend(client, cast.bob, method["id"]) == 429


async def test_every_api_process_counts_the_same_sends(
    settings: Settings, clock: FrozenClock, cast: Cast
) -> None:
    # Two apps on one database stand for two API processes behind a load balancer.
    async with app_client(settings, clock) as one, app_client(settings, clock) as two:
        method = await add_method(one, cast.bob, kind="sms", address="+14155550100")
        for client in (two, one, two, one):
            assert await _resend(client, cast.bob, method["id"]) == 202
        assert await _resend(two, cast.bob, method["id"]) == 429
        assert await _resend(one, cast.bob, method["id"]) == 429


async def test_a_new_code_does_not_reset_the_count_of_wrong_ones(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer, clock: FrozenClock
) -> None:
    method = await add_method(client, cast.bob, kind="email", address="bob@pager.example.com")
    await drain(ctx)
    first = last_code_in(smtp.box.messages[-1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    wrong = "000000" if first != "000000" else "111111"
    for _ in range(5):
        assert (await verify(client, cast.bob, method["id"], wrong)).status_code == 422
    assert await _resend(client, cast.bob, method["id"]) == 202
    await drain(ctx)
    fresh = last_code_in(smtp.box.messages[-1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    locked = await verify(client, cast.bob, method["id"], fresh)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == 3600

    clock.advance(timedelta(hours=1))
    assert await _resend(client, cast.bob, method["id"]) == 202
    await drain(ctx)
    fresh = last_code_in(smtp.box.messages[-1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert (await verify(client, cast.bob, method["id"], fresh)).status_code == 200
