"""One-click acknowledge and resolve from a message: GET shows, POST acts, and a link that is
tampered with or expired does nothing."""

from __future__ import annotations

import re
from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.notifications.conftest import Paging, SmtpServer, open_incident
from tests.notifications.helpers import drain, remove_from_team
from tocsin.clock import FrozenClock
from tocsin.worker.context import WorkerContext

LINK = re.compile(r"(Acknowledge|Resolve): http://test(/a/\S+)")


async def links_from_email(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> tuple[str, dict[str, str]]:
    incident_id = await open_incident(client, paging, title="Disk full")
    await drain(ctx)
    plain = smtp.box.messages[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return incident_id, {label: path for label, path in LINK.findall(plain)}


async def status_of(client: AsyncClient, paging: Paging, incident_id: str) -> str:
    response = await client.get(
        f"/api/v1/incidents/{incident_id}", headers=paging.world.cast.bob.headers
    )
    status: str = response.json()["status"]
    return status


async def test_the_acknowledge_link_confirms_on_get_and_acts_on_post(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    incident_id, links = await links_from_email(client, paging, ctx, smtp)
    page = await client.get(links["Acknowledge"])
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "Acknowledge incident #1" in page.text and "Disk full" in page.text
    assert "<form method='post'>" in page.text
    # Opening it twice (a mail scanner, a preview) still changes nothing.
    await client.get(links["Acknowledge"])
    assert await status_of(client, paging, incident_id) == "open"

    done = await client.post(links["Acknowledge"])
    assert done.status_code == 200
    assert "acknowledged" in done.text
    assert await status_of(client, paging, incident_id) == "acknowledged"
    detail = (
        await client.get(f"/api/v1/incidents/{incident_id}", headers=paging.world.cast.bob.headers)
    ).json()
    ack = next(e for e in detail["timeline"] if e["kind"] == "acknowledged")
    assert ack["actor_type"] == "user"
    assert ack["actor_id"] == str(paging.world.cast.bob.id)
    assert "one-click" in ack["note"]

    again = await client.post(links["Acknowledge"])
    assert again.status_code == 409

    resolved = await client.post(links["Resolve"])
    assert resolved.status_code == 200
    assert await status_of(client, paging, incident_id) == "resolved"


async def test_a_tampered_link_is_refused(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    incident_id, links = await links_from_email(client, paging, ctx, smtp)
    path = links["Acknowledge"]
    payload, signature = path.removeprefix("/a/").split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    for bad in (f"/a/{flipped}.{signature}", f"/a/{payload}.{signature[:-3]}", "/a/garbage"):
        assert (await client.get(bad)).status_code == 403
        assert (await client.post(bad)).status_code == 403
    # The resolve signature does not make an acknowledge payload valid either.
    _, resolve_signature = links["Resolve"].removeprefix("/a/").split(".")
    assert (await client.post(f"/a/{payload}.{resolve_signature}")).status_code == 403
    assert await status_of(client, paging, incident_id) == "open"


async def test_an_expired_link_is_refused(
    client: AsyncClient,
    paging: Paging,
    ctx: WorkerContext,
    smtp: SmtpServer,
    clock: FrozenClock,
) -> None:
    incident_id, links = await links_from_email(client, paging, ctx, smtp)
    clock.advance(timedelta(hours=24, seconds=1))
    refused = await client.post(links["Acknowledge"])
    assert refused.status_code == 403
    assert "expired" in refused.text
    assert await status_of(client, paging, incident_id) == "open"


async def test_each_link_acts_once_and_then_shows_the_incident_as_it_is(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer
) -> None:
    incident_id, links = await links_from_email(client, paging, ctx, smtp)
    bob = paging.world.cast.bob
    assert (await client.post(links["Acknowledge"])).status_code == 200
    # Bob takes it back; the acknowledge link in the old message must not act again (it
    # could have been forwarded, or be replayed from a proxy's log).
    undo = await client.post(f"/api/v1/incidents/{incident_id}/unacknowledge", headers=bob.headers)
    assert undo.status_code == 200, undo.text
    before = await status_of(client, paging, incident_id)

    again = await client.post(links["Acknowledge"])
    assert again.status_code == 409
    assert "This link has been used" in again.text
    assert f"Status now: {before}" in again.text
    assert await status_of(client, paging, incident_id) == before
    shown = await client.get(links["Acknowledge"])
    assert shown.status_code == 200
    assert "This link has been used" in shown.text and "<form" not in shown.text
    # The other link of the same message is a link of its own.
    assert (await client.post(links["Resolve"])).status_code == 200


async def test_a_link_acts_only_while_its_person_may_act_on_the_incident(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, smtp: SmtpServer, engine: AsyncEngine
) -> None:
    incident_id, links = await links_from_email(client, paging, ctx, smtp)
    cast = paging.world.cast
    member = f"/api/v1/teams/{cast.payments}/members/{cast.bob.id}"

    demoted = await client.patch(member, json={"role": "observer"}, headers=cast.alice.headers)
    assert demoted.status_code == 200, demoted.text
    refused = await client.post(links["Acknowledge"])
    assert refused.status_code == 403
    assert "observers" in refused.text
    shown = await client.get(links["Acknowledge"])
    assert shown.status_code == 403 and "<form" not in shown.text

    # Out of the team (the API keeps a policy's target in it; the database does not care).
    await remove_from_team(engine, cast.payments, cast.bob.id)
    refused = await client.post(links["Resolve"])
    assert refused.status_code == 403
    assert "no longer a member" in refused.text
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=cast.alice.headers)
    assert detail.json()["status"] == "open"
