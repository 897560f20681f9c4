"""Pages become deliveries and the worker step sends them: due times from the rules, retries
with backoff, failures recorded without holding others up, cancellation on acknowledge,
and every attempt on the incident."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.notifications.conftest import (
    HttpReceiver,
    Paging,
    SilentReceiver,
    SmtpServer,
    open_incident,
)
from tests.notifications.helpers import (
    add_rule,
    add_verified_webhook,
    deliveries_seen_by,
    drain,
)
from tocsin.clock import FrozenClock
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.notifications.models import ContactMethod, Delivery
from tocsin.worker.context import WorkerContext


async def deliveries_of(client: AsyncClient, paging: Paging, incident_id: str) -> list[dict]:  # type: ignore[type-arg]
    return await deliveries_seen_by(client, incident_id, paging.world.cast.bob)


async def test_a_person_without_rules_is_emailed_at_once_with_the_incident_and_its_links(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    incident_id = await open_incident(client, paging, title="Checkout down", severity="critical")
    await drain(ctx)
    assert len(smtp.box.messages) == 1
    mail = smtp.box.messages[0]
    assert mail["To"] == "bob@example.com"
    assert "Checkout down" in mail["Subject"] and "CRITICAL" in mail["Subject"]
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (plain, html):
        assert "Checkout down" in part
        assert "Checkout" in part  # the service
        assert "Payments" in part  # the team
        assert f"http://test/api/v1/incidents/{incident_id}" in part
        assert "http://test/a/" in part
    assert "Acknowledge: http://test/a/" in plain and "Resolve: http://test/a/" in plain
    [delivery] = await deliveries_of(client, paging, incident_id)
    assert delivery["status"] == "sent"
    assert delivery["channel"] == "email"
    assert delivery["provider_id"].endswith("@tocsin>")


async def test_an_email_carries_a_non_ascii_title_intact_and_its_envelope_names_both_ends(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    title = "Zahlungen in Köln schlagen fehl — 決済エラー"
    await open_incident(client, paging, title=title, severity="critical")
    await drain(ctx)
    [mail] = smtp.box.messages
    assert title in mail["Subject"]
    assert title in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert smtp.box.envelopes == [("tocsin@example.com", ["bob@example.com"])]


async def test_rules_choose_the_method_and_the_delay_by_urgency(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=5)
    await add_rule(client, bob, method_id=hook["id"], urgency="low", delay=10)
    before = len(receiver.requests)

    high = await open_incident(client, paging, title="High one", severity="high")
    low = await open_incident(client, paging, title="Low one", severity="medium")
    await drain(ctx)
    sent = [r.json() for r in receiver.requests[before:]]
    assert [m["incident"]["title"] for m in sent] == ["High one"]

    planned = await deliveries_of(client, paging, high)
    opened_at = clock.now()
    assert sorted(d["due_at"] for d in planned) == [
        opened_at.isoformat().replace("+00:00", "Z"),
        (opened_at + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    ]
    [low_delivery] = await deliveries_of(client, paging, low)
    assert low_delivery["status"] == "pending"

    clock.advance(timedelta(minutes=5))
    await drain(ctx)
    assert [r.json()["incident"]["title"] for r in receiver.requests[before:]] == [
        "High one",
        "High one",
    ]
    clock.advance(timedelta(minutes=5))
    await drain(ctx)
    assert receiver.requests[-1].json()["incident"]["title"] == "Low one"


async def test_acknowledging_cancels_deliveries_not_yet_sent(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=5)
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    ack = await client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=bob.headers)
    assert ack.status_code == 200
    sent_before = len(receiver.requests)
    clock.advance(timedelta(minutes=10))
    await drain(ctx)
    assert len(receiver.requests) == sent_before
    statuses = sorted(d["status"] for d in await deliveries_of(client, paging, incident_id))
    assert statuses == ["cancelled", "sent"]


async def test_a_receiver_failing_twice_then_answering_gets_exactly_one_delivery(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    before = len(receiver.requests)
    receiver.script = [503, 500]
    incident_id = await open_incident(client, paging)

    assert await send_due_deliveries(ctx)
    assert not await send_due_deliveries(ctx)  # backing off: nothing due yet
    clock.advance(timedelta(seconds=30))
    assert await send_due_deliveries(ctx)
    clock.advance(timedelta(seconds=59))
    assert not await send_due_deliveries(ctx)  # the second wait is twice as long
    clock.advance(timedelta(seconds=1))
    assert await send_due_deliveries(ctx)
    clock.advance(timedelta(hours=1))
    await drain(ctx)

    tries = receiver.requests[before:]
    assert len(tries) == 3
    assert len({r.headers["idempotency-key"] for r in tries}) == 1
    assert len([r for r in tries if r.headers.get("x-answered") == "2xx"]) == 1
    [delivery] = await deliveries_of(client, paging, incident_id)
    assert delivery["status"] == "sent"
    assert [a["status"] for a in delivery["attempt_log"]] == ["retrying", "retrying", "sent"]
    assert "503" in (delivery["attempt_log"][0]["error"] or "")
    timeline = (await client.get(f"/api/v1/incidents/{incident_id}", headers=bob.headers)).json()[
        "timeline"
    ]
    kinds = [e["kind"] for e in timeline if e["kind"].startswith("notification_")]
    assert kinds == ["notification_retrying", "notification_retrying", "notification_sent"]


async def test_a_receiver_that_never_answers_is_retried_then_failed_without_holding_others(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    silent: SilentReceiver,
    clock: FrozenClock,
    engine: AsyncEngine,
) -> None:
    bob = paging.world.cast.bob
    alice = paging.world.cast.alice
    good = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=good["id"], urgency="high", delay=0)
    # Alice's webhook goes nowhere: the row is made verified by hand, as no code can get out.
    dead = await client.post(
        f"/api/v1/users/{alice.id}/contact-methods",
        json={"kind": "webhook", "name": "dead", "address": silent.base_url + "/x"},
        headers=alice.headers,
    )
    async with engine.begin() as conn:
        await conn.execute(
            update(ContactMethod)
            .where(ContactMethod.id == uuid.UUID(dead.json()["id"]))
            .values(verified_at=clock.now())
        )
    await add_rule(client, alice, method_id=dead.json()["id"], urgency="high", delay=0)
    # Page both Bob and Alice: the service's policy targets the whole team.
    response = await client.post(
        paging.world.integration.url,
        json={"title": "Both paged", "severity": "high", "routing_key": "payments-api"},
    )
    incident_id = response.json()["incident_id"]
    await paging.escalate()
    before = len(receiver.requests)

    ctx = replace(ctx, settings=ctx.settings.model_copy(update={"notify_timeout_seconds": 5.0}))
    started = time.monotonic()
    assert await send_due_deliveries(ctx)
    elapsed = time.monotonic() - started
    assert len(receiver.requests) == before + 1  # Bob's went out in the same round
    assert elapsed < 30  # cut off by the channel timeout, not left hanging

    for _ in range(2):
        clock.advance(timedelta(minutes=15))
        await drain(ctx)
    items = await deliveries_of(client, paging, incident_id)
    by_user = {d["user_id"]: d for d in items}
    assert by_user[str(bob.id)]["status"] == "sent"
    failed = by_user[str(alice.id)]
    assert failed["status"] == "failed"
    assert [a["status"] for a in failed["attempt_log"]] == ["retrying", "retrying", "failed"]
    assert all("no answer within" in (a["error"] or "") for a in failed["attempt_log"])
    assert silent.connections == 6  # three tries of its verification code, three of the page


async def test_a_permanent_refusal_fails_at_once(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, receiver: HttpReceiver
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    receiver.script = [410]
    incident_id = await open_incident(client, paging)
    await drain(ctx)
    [delivery] = await deliveries_of(client, paging, incident_id)
    assert delivery["status"] == "failed"
    assert len(delivery["attempt_log"]) == 1


async def test_planning_the_same_pages_twice_adds_nothing(
    client: AsyncClient, paging: Paging, engine: AsyncEngine, clock: FrozenClock
) -> None:
    from tocsin.escalation.models import Page
    from tocsin.notifications.dispatch import plan_deliveries

    await open_incident(client, paging)
    async with engine.begin() as conn:
        page_ids = list((await conn.execute(select(Page.id))).scalars())
        await plan_deliveries(conn, page_ids, now=clock.now())
        await plan_deliveries(conn, page_ids, now=clock.now())
    async with engine.connect() as conn:
        keys = list((await conn.execute(select(Delivery.idempotency_key))).scalars())
    assert len(keys) == len(page_ids) == 1


async def test_a_storm_of_incidents_is_bundled_into_one_message(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    receiver: HttpReceiver,
    clock: FrozenClock,
) -> None:
    bob = paging.world.cast.bob
    hook = await add_verified_webhook(client, ctx, receiver, bob, "/bob")
    await add_rule(client, bob, method_id=hook["id"], urgency="high", delay=0)
    before = len(receiver.requests)
    for n in range(12):
        await open_incident(client, paging, title=f"Storm {n}")
    await drain(ctx)
    messages = [r.json() for r in receiver.requests[before:]]
    singles = [m for m in messages if m["type"] == "incident.page"]
    bundles = [m for m in messages if m["type"] == "incident.bundle"]
    assert len(singles) == 3  # TOCSIN_NOTIFY_BURST
    assert len(bundles) == 1
    assert bundles[0]["count"] == 9
    assert bundles[0]["links"]["incidents"] == "http://test/api/v1/incidents?status=open"

    # More in the same window wait until it has moved on, instead of adding messages.
    for n in range(3):
        await open_incident(client, paging, title=f"Later {n}")
    await drain(ctx)
    assert len(receiver.requests) - before == 4
    clock.advance(timedelta(minutes=5, seconds=1))
    await drain(ctx)
    later = [r.json() for r in receiver.requests[before + 4 :]]
    assert sorted(m["incident"]["title"] for m in later) == ["Later 0", "Later 1", "Later 2"]


async def test_a_line_break_in_a_title_neither_stops_email_pages_nor_adds_headers(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer, engine: AsyncEngine
) -> None:
    # A sender who could put CR/LF in a title could otherwise silence every email page for
    # the incident (the email package refuses such a header) or try to add a Bcc.
    title = "Disk full\r\nBcc: mallory@example.com\r\n\r\nforged body\x1b[31m\u2028end"
    incident_id = await open_incident(client, paging, title=title)
    await drain(ctx)
    [mail] = smtp.box.messages
    assert mail["Subject"] == (
        "[CRITICAL] #1 Disk full Bcc: mallory@example.com forged body [31m end"
    )
    assert mail["Bcc"] is None
    assert smtp.box.envelopes == [("tocsin@example.com", ["bob@example.com"])]
    assert "Disk full" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    async with engine.connect() as conn:
        statuses = list(
            (
                await conn.execute(
                    select(Delivery.status).where(Delivery.incident_id == uuid.UUID(incident_id))
                )
            ).scalars()
        )
    assert statuses == ["sent"]
