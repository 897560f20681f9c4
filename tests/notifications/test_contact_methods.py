"""Contact methods and notification rules through the API: verification before use, who may
edit whose, clear refusals, and the warning for a person who relies on the default."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import Cast
from tests.notifications.conftest import HttpReceiver, SmtpServer
from tests.notifications.helpers import (
    add_method,
    add_rule,
    add_verified_email,
    add_verified_webhook,
    drain,
    last_code_in,
    verify,
)
from tocsin.clock import FrozenClock
from tocsin.notifications.channels.webhook import verify as verify_signature
from tocsin.worker.context import WorkerContext


async def test_a_new_email_method_gets_a_code_and_is_usable_only_once_verified(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    method = await add_method(client, cast.bob, kind="email", address="bob@pager.example.com")
    assert method["verified_at"] is None
    refused = await add_rule(client, cast.bob, method_id=method["id"], urgency="high", delay=0)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "contact_method_id"]

    await drain(ctx)
    assert len(smtp.box.messages) == 1
    mail = smtp.box.messages[0]
    assert mail["To"] == "bob@pager.example.com"
    code = last_code_in(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]

    wrong = "000000" if code != "000000" else "111111"
    assert (await verify(client, cast.bob, method["id"], wrong)).status_code == 422
    ok = await verify(client, cast.bob, method["id"], code)
    assert ok.status_code == 200
    assert ok.json()["verified_at"] is not None
    rule = await add_rule(client, cast.bob, method_id=method["id"], urgency="high", delay=0)
    assert rule.status_code == 201


async def test_five_wrong_codes_stop_guessing_for_the_hour(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    method = await add_method(client, cast.bob, kind="email", address="bob@pager.example.com")
    await drain(ctx)
    code = last_code_in(smtp.box.messages[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert (await verify(client, cast.bob, method["id"], wrong)).status_code == 422
    response = await verify(client, cast.bob, method["id"], code)
    assert response.status_code == 429
    assert "too many wrong codes" in response.json()["detail"]
    assert int(response.headers["retry-after"]) == 3600


async def test_an_expired_code_is_refused(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer, clock: FrozenClock
) -> None:
    from datetime import timedelta

    method = await add_method(client, cast.bob, kind="email", address="bob@pager.example.com")
    await drain(ctx)
    code = last_code_in(smtp.box.messages[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    clock.advance(timedelta(minutes=31))
    response = await verify(client, cast.bob, method["id"], code)
    assert response.status_code == 422
    assert "expired" in response.json()["detail"][0]["msg"]


async def test_a_webhook_method_is_verified_through_its_own_signed_payload(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, receiver: HttpReceiver
) -> None:
    method = await add_verified_webhook(client, ctx, receiver, cast.alice, "/hooks/alice")
    assert method["signing_secret"]
    request = receiver.requests[0]
    assert request.path == "/hooks/alice"
    assert verify_signature(
        method["signing_secret"],
        timestamp=request.headers["x-tocsin-timestamp"],
        body=request.body,
        signature=request.headers["x-tocsin-signature"],
        now=float(request.headers["x-tocsin-timestamp"]),
        tolerance=300,
    )


async def test_addresses_that_do_not_fit_the_kind_are_refused_naming_the_field(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    cases = [
        ("email", "not-an-address"),
        ("sms", "0170 1234567"),
        ("voice", "+0123"),
        ("webhook", "ftp://example.com/x"),
        ("chat", "nosuchservice://token"),
    ]
    for kind, address in cases:
        response = await client.post(
            f"/api/v1/users/{cast.bob.id}/contact-methods",
            json={"kind": kind, "name": "x", "address": address},
            headers=cast.bob.headers,
        )
        assert response.status_code == 422, (kind, address)
        assert response.json()["detail"][0]["loc"] == ["body", "address"], (kind, address)
    unknown = await client.post(
        f"/api/v1/users/{cast.bob.id}/contact-methods",
        json={"kind": "pigeon", "name": "x", "address": "roof"},
        headers=cast.bob.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "kind"]
    assert await count_rows(engine, "contact_methods") == 0
    assert await count_rows(engine, "deliveries") == 0


async def test_the_same_address_twice_is_a_conflict(client: AsyncClient, cast: Cast) -> None:
    await add_method(client, cast.bob, kind="sms", address="+14155550100")
    again = await client.post(
        f"/api/v1/users/{cast.bob.id}/contact-methods",
        json={"kind": "sms", "name": "again", "address": "+14155550100"},
        headers=cast.bob.headers,
    )
    assert again.status_code == 409


async def test_users_edit_their_own_methods_and_admins_anyones(
    client: AsyncClient, cast: Cast
) -> None:
    method = await add_method(client, cast.bob, kind="sms", address="+14155550100")
    url = f"/api/v1/users/{cast.bob.id}/contact-methods"
    assert (await client.get(url, headers=cast.mallory.headers)).status_code == 403
    assert (await client.get(url, headers=cast.alice.headers)).status_code == 403
    stolen = await client.post(
        url,
        json={"kind": "sms", "name": "x", "address": "+14155550199"},
        headers=cast.mallory.headers,
    )
    assert stolen.status_code == 403
    listed = await client.get(url, headers=cast.admin.headers)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["items"]] == [method["id"]]
    renamed = await client.patch(
        f"{url}/{method['id']}", json={"name": "work phone"}, headers=cast.admin.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "work phone"
    gone = await client.delete(f"{url}/{method['id']}", headers=cast.bob.headers)
    assert gone.status_code == 204
    assert (await client.get(url, headers=cast.bob.headers)).json()["items"] == []


async def test_a_person_without_rules_is_warned_that_only_the_default_email_reaches_them(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    url = f"/api/v1/users/{cast.bob.id}/contact-methods"
    warnings = (await client.get(url, headers=cast.bob.headers)).json()["warnings"]
    assert any("high urgency" in w and "bob@example.com" in w for w in warnings)
    assert any("low urgency" in w for w in warnings)

    method = await add_verified_email(client, ctx, smtp.box, cast.bob, "bob@pager.example.com")
    await add_rule(client, cast.bob, method_id=method["id"], urgency="high", delay=0)
    rules = (
        await client.get(
            f"/api/v1/users/{cast.bob.id}/notification-rules", headers=cast.bob.headers
        )
    ).json()
    assert [r["urgency"] for r in rules["items"]] == ["high"]
    assert not any("high urgency" in w for w in rules["warnings"])
    assert any("low urgency" in w for w in rules["warnings"])

    await add_rule(client, cast.bob, method_id=method["id"], urgency="low", delay=5)
    assert (await client.get(url, headers=cast.bob.headers)).json()["warnings"] == []


async def test_rule_delays_out_of_range_are_refused(client: AsyncClient, cast: Cast) -> None:
    method = await add_method(client, cast.bob, kind="sms", address="+14155550100")
    for delay in (-1, 1441):
        response = await add_rule(
            client, cast.bob, method_id=method["id"], urgency="high", delay=delay
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "delay_minutes"]


async def test_a_test_message_needs_a_verified_method_and_then_arrives(
    client: AsyncClient, cast: Cast, ctx: WorkerContext, receiver: HttpReceiver
) -> None:
    unverified = await add_method(
        client, cast.bob, kind="webhook", address=receiver.base_url + "/unverified"
    )
    url = f"/api/v1/users/{cast.bob.id}/contact-methods"
    refused = await client.post(f"{url}/{unverified['id']}/test", headers=cast.bob.headers)
    assert refused.status_code == 409

    method = await add_verified_webhook(client, ctx, receiver, cast.bob, "/bob")
    queued = await client.post(f"{url}/{method['id']}/test", headers=cast.bob.headers)
    assert queued.status_code == 202
    delivery_id = queued.json()["delivery_id"]
    await drain(ctx)
    assert receiver.requests[-1].json()["type"] == "contact_method.test"
    shown = await client.get(
        f"/api/v1/users/{cast.bob.id}/deliveries/{delivery_id}", headers=cast.bob.headers
    )
    assert shown.json()["status"] == "sent"
    assert [a["status"] for a in shown.json()["attempt_log"]] == ["sent"]
