"""Steps the notification tests share: adding and verifying contact methods through the API,
running the delivery step until it is idle."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Person
from tests.notifications.conftest import HttpReceiver, MailBox, Paging
from tocsin.app import create_app
from tocsin.clock import Clock
from tocsin.config import Settings
from tocsin.escalation.step import fire_due_escalations
from tocsin.incidents.models import IncidentEvent
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.teams.models import TeamMember
from tocsin.worker.context import WorkerContext

CODE = re.compile(r"verification code is ([0-9]{6})")


async def drain(ctx: WorkerContext) -> int:
    """Run the escalation and delivery steps until neither finds anything due (a new
    incident's level 1 is paged by the escalation step); returns how many rounds did work."""
    rounds = 0
    while True:
        escalated = await fire_due_escalations(ctx)
        sent = await send_due_deliveries(ctx)
        if not (escalated or sent):
            return rounds
        rounds += 1


def last_code_in(text: str) -> str:
    codes = CODE.findall(text)
    assert codes, f"no verification code in {text!r}"
    return str(codes[-1])


async def add_method(
    client: AsyncClient, person: Person, *, kind: str, address: str, name: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/users/{person.id}/contact-methods",
        json={"kind": kind, "name": name or f"my {kind}", "address": address},
        headers=person.headers,
    )
    assert response.status_code == 201, response.text
    method: dict[str, Any] = response.json()
    return method


async def verify(client: AsyncClient, person: Person, method_id: str, code: str) -> Any:
    return await client.post(
        f"/api/v1/users/{person.id}/contact-methods/{method_id}/verify",
        json={"code": code},
        headers=person.headers,
    )


async def add_verified_email(
    client: AsyncClient, ctx: WorkerContext, box: MailBox, person: Person, address: str
) -> dict[str, Any]:
    method = await add_method(client, person, kind="email", address=address)
    await drain(ctx)
    mail = [m for m in box.messages if m["To"] == address][-1]
    code = last_code_in(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    response = await verify(client, person, method["id"], code)
    assert response.status_code == 200, response.text
    verified: dict[str, Any] = response.json()
    return verified


async def add_verified_webhook(
    client: AsyncClient, ctx: WorkerContext, receiver: HttpReceiver, person: Person, path: str
) -> dict[str, Any]:
    method = await add_method(client, person, kind="webhook", address=receiver.base_url + path)
    await drain(ctx)
    code = last_code_in([r for r in receiver.requests if r.path == path][-1].json()["text"])
    response = await verify(client, person, method["id"], code)
    assert response.status_code == 200, response.text
    verified: dict[str, Any] = response.json()
    return verified


async def add_rule(
    client: AsyncClient, person: Person, *, method_id: str, urgency: str, delay: int
) -> Any:
    return await client.post(
        f"/api/v1/users/{person.id}/notification-rules",
        json={"urgency": urgency, "delay_minutes": delay, "contact_method_id": method_id},
        headers=person.headers,
    )


@asynccontextmanager
async def app_client(settings: Settings, clock: Clock) -> AsyncIterator[AsyncClient]:
    """A client for an app of its own on these settings (as another API process would be,
    or one an operator configured differently)."""
    application = create_app(settings, clock=clock, run_worker=False)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        yield http


async def remove_from_team(engine: AsyncEngine, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Take someone out of a team straight in the database (the API refuses while one of
    the team's policies pages them, which these tests need it to)."""
    async with engine.begin() as conn:
        await conn.execute(
            delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
        )


async def bob_paged_by_webhook(
    client: AsyncClient, paging: Paging, ctx: WorkerContext, receiver: HttpReceiver, path: str
) -> dict[str, Any]:
    """Bob with a verified webhook at `path` and a rule that uses it at once for high
    urgency pages; returns the method."""
    bob = paging.world.cast.bob
    method = await add_verified_webhook(client, ctx, receiver, bob, path)
    rule = await add_rule(client, bob, method_id=method["id"], urgency="high", delay=0)
    assert rule.status_code == 201, rule.text
    return method


async def deliveries_seen_by(
    client: AsyncClient, incident_id: str, person: Person
) -> list[dict[str, Any]]:
    """GET /api/v1/incidents/{id}/deliveries as `person`."""
    response = await client.get(
        f"/api/v1/incidents/{incident_id}/deliveries", headers=person.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def timeline_notes(engine: AsyncEngine, incident_id: str) -> list[str]:
    async with engine.connect() as conn:
        notes = await conn.execute(
            select(IncidentEvent.note).where(IncidentEvent.incident_id == uuid.UUID(incident_id))
        )
        return list(notes.scalars())
