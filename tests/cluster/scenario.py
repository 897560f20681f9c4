"""The SIGKILL scenario: alerts sent to both API nodes while a WebSocket client listens on
one; one API node and one worker are SIGKILLed mid-run and started again; then the timers
are brought forward so every escalation level comes due, and the database is checked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import websockets
from sqlalchemy import text

from tests.cluster.harness import Cluster
from tests.factories import (
    IntegrationRef,
    Person,
    make_cast,
    make_integration,
    make_policy,
    make_service,
)
from tocsin.db import create_engine
from tocsin.escalation.models import TargetType


@dataclass(frozen=True)
class Seeded:
    bob: Person
    alice: Person
    integration: IntegrationRef


async def seed(url: str) -> Seeded:
    """Payments, whose policy pages Bob (level 1), then Alice (level 2), once each."""
    engine = create_engine(url)
    try:
        now = datetime.now(UTC)
        cast = await make_cast(engine, now)
        policy = await make_policy(
            engine,
            now,
            team_id=cast.payments,
            targets=[(TargetType.USER, cast.bob.id), (TargetType.USER, cast.alice.id)],
            timeout_minutes=1,
        )
        await make_service(
            engine, now, team_id=cast.payments, routing_key="payments-api", policy_id=policy
        )
        integration = await make_integration(engine, now)
        return Seeded(cast.bob, cast.alice, integration)
    finally:
        await engine.dispose()


@dataclass
class Outcome:
    accepted: dict[str, str] = field(default_factory=dict)  # alert id -> incident id (202)
    failed: int = 0  # refused or never answered (the killed node)
    heard: set[str] = field(default_factory=set)  # incident ids the WebSocket client heard
    sent_by_node: Counter[str] = field(default_factory=Counter)
    after_restart: int = 0  # alerts the restarted API node accepted


async def _send(
    http: httpx.AsyncClient, cluster: Cluster, seeded: Seeded, outcome: Outcome, n: int
) -> None:
    node = cluster.api[n % len(cluster.api)]
    body = {"title": f"Alert {n}", "routing_key": "payments-api", "dedup_key": f"a-{n}"}
    try:
        response = await http.post(f"{node.base_url}{seeded.integration.url}", json=body)
    except httpx.HTTPError:
        outcome.failed += 1
        return
    if response.status_code == 202:
        found = response.json()
        outcome.accepted[found["alert_id"]] = found["incident_id"]
        outcome.sent_by_node[node.name] += 1
    else:
        outcome.failed += 1


async def _listen(cluster: Cluster, seeded: Seeded, outcome: Outcome) -> None:
    url = f"{cluster.api[0].ws_url}/api/v1/stream"
    async with websockets.connect(url, additional_headers=seeded.bob.headers) as ws:
        async for raw in ws:
            message = json.loads(raw)
            incident = message.get("incident") or {}
            if "id" in incident:
                outcome.heard.add(incident["id"])


async def run(cluster: Cluster, seeded: Seeded, *, seconds: float, concurrency: int = 4) -> Outcome:
    """Send alerts to both API nodes in turn: `seconds` / 2 with everything up, then
    SIGKILL api2 and worker1 and go on with what is left while they start again, then
    `seconds` / 2 more with everything up again."""
    outcome = Outcome()
    listener = asyncio.create_task(_listen(cluster, seeded, outcome))
    await asyncio.sleep(1.0)  # subscribed before the first alert
    counter = iter(range(10**9))
    sending = True

    async def sender(http: httpx.AsyncClient) -> None:
        while sending:
            await _send(http, cluster, seeded, outcome, next(counter))

    async with httpx.AsyncClient(timeout=10) as http:
        senders = [asyncio.create_task(sender(http)) for _ in range(concurrency)]
        await asyncio.sleep(seconds / 2)
        cluster.kill("api2")
        cluster.kill("worker1")
        await asyncio.sleep(1.0)
        await asyncio.gather(
            asyncio.to_thread(cluster.start, "api2"), asyncio.to_thread(cluster.start, "worker1")
        )
        before = outcome.sent_by_node["api2"]
        await asyncio.sleep(seconds / 2)
        outcome.after_restart = outcome.sent_by_node["api2"] - before
        sending = False
        await asyncio.gather(*senders)
    await bring_timers_forward(cluster.database_url)
    # The last events reach the listener: seconds on a loaded machine, so wait for them (a
    # minute at most) rather than a fixed time; problems() reports any never heard.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if set(outcome.accepted.values()) <= outcome.heard:
            break
        await asyncio.sleep(0.2)
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
        await listener
    return outcome


async def bring_timers_forward(url: str, within: float = 120.0) -> None:
    """Make every pending escalation timer due now (as if its minute had passed), again and
    again, until none is pending: each incident then runs through all its levels."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE escalation_jobs SET scheduled_for = now() WHERE NOT completed "
                        "AND cancelled_at IS NULL AND outcome IS NULL AND scheduled_for > now()"
                    )
                )
                pending = await conn.execute(
                    text(
                        "SELECT count(*) FROM escalation_jobs WHERE NOT completed "
                        "AND cancelled_at IS NULL AND outcome IS NULL"
                    )
                )
                if pending.scalar_one() == 0:
                    return
            await asyncio.sleep(0.5)
        raise AssertionError("escalation timers still pending after the workers had time")
    finally:
        await engine.dispose()


async def problems(url: str, seeded: Seeded, outcome: Outcome) -> list[str]:
    """What went wrong, in words; empty when every promise held."""
    found: list[str] = []
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            stored = {
                str(row[0]): str(row[1])
                for row in await conn.execute(text("SELECT id, incident_id FROM alerts"))
            }
            missing = [a for a in outcome.accepted if a not in stored]
            if missing:
                found.append(f"{len(missing)} alerts answered 202 are missing: {missing[:5]}")
            moved = [a for a, i in outcome.accepted.items() if a in stored and stored[a] != i]
            if moved:
                found.append(f"{len(moved)} alerts are not in the incident they were given")
            pages = await conn.execute(
                text("SELECT incident_id, level_number, repeat, user_id FROM pages")
            )
            per_step = Counter((str(r[0]), r[1], r[2], str(r[3])) for r in pages)
            twice = [step for step, count in per_step.items() if count > 1]
            if twice:
                found.append(f"{len(twice)} escalation steps paged twice: {twice[:5]}")
            levels: dict[str, list[tuple[int, str]]] = {}
            for incident, level, _repeat, user in per_step:
                levels.setdefault(incident, []).append((level, user))
            expected = sorted([(1, str(seeded.bob.id)), (2, str(seeded.alice.id))])
            incidents = set(stored.values())
            wrong = [i for i in incidents if sorted(levels.get(i, [])) != expected]
            if wrong:
                found.append(
                    f"{len(wrong)} incidents did not page level 1 then level 2 once each: "
                    + ", ".join(f"{i}: {sorted(levels.get(i, []))}" for i in wrong[:3])
                )
        unheard = set(outcome.accepted.values()) - outcome.heard
        if unheard:
            found.append(f"{len(unheard)} incidents never reached the WebSocket client")
    finally:
        await engine.dispose()
    return found


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]
