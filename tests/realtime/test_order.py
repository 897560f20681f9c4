"""Stream order: every subscriber hears of one incident in the order its changes were
committed, `incident.created` first, even when loading an incident takes its time or another
process's announcement overtakes the creation's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tocsin.realtime.events import StreamEvent
from tocsin.realtime.hub import Hub

TEAM = uuid.uuid4()
OPENED = datetime(2026, 3, 10, 9, tzinfo=UTC)


class Incidents:
    """The loader: each incident as it is now; the first load of `slow` waits for `go`."""

    def __init__(self, slow: uuid.UUID | None = None) -> None:
        self.state: dict[uuid.UUID, dict[str, Any]] = {}
        self.slow = slow
        self.go = asyncio.Event()

    def open(self, incident_id: uuid.UUID, *, at: datetime = OPENED) -> None:
        self.state[incident_id] = {
            "id": str(incident_id),
            "team_id": str(TEAM),
            "created_at": at.isoformat(),
            "current_level": 0,
        }

    async def load(self, incident_id: uuid.UUID) -> tuple[uuid.UUID, dict[str, Any]] | None:
        if incident_id == self.slow:
            self.slow = None
            await self.go.wait()
        found = self.state.get(incident_id)
        return (TEAM, dict(found)) if found else None


def received(queue: asyncio.Queue[dict[str, Any] | None]) -> list[tuple[str, int]]:
    out = []
    while not queue.empty():
        message = queue.get_nowait()
        assert message is not None
        out.append((message["type"], message["incident"]["current_level"]))
    return out


async def test_a_slow_load_does_not_let_a_later_event_overtake_the_creation() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    incidents = Incidents(slow=first)
    hub = Hub(incidents.load)
    subscription = await hub.subscribe({TEAM}, since=OPENED - timedelta(minutes=1))
    incidents.open(first)
    hub.announce([(StreamEvent.INCIDENT_CREATED, first)])
    await asyncio.sleep(0)  # its load has started, and waits
    incidents.state[first]["current_level"] = 1  # the worker paged level 1
    hub.announce([(StreamEvent.INCIDENT_UPDATED, first)])
    incidents.open(second)
    hub.announce([(StreamEvent.INCIDENT_CREATED, second)])
    await asyncio.sleep(0.05)
    assert received(subscription.queue) == [], "nothing overtakes the slow creation"
    incidents.go.set()
    await hub.drain()
    # Each message carries the incident as it is when sent: never older than the last.
    assert received(subscription.queue) == [
        ("incident.created", 1),
        ("incident.updated", 1),
        ("incident.created", 0),
    ]


async def test_an_update_heard_before_its_creation_reaches_subscribers_as_the_creation() -> None:
    # Two processes: the worker's NOTIFY arrives before the ingest process's.
    incident = uuid.uuid4()
    incidents = Incidents()
    hub = Hub(incidents.load)
    subscription = await hub.subscribe({TEAM}, since=OPENED - timedelta(minutes=1))
    incidents.open(incident)
    incidents.state[incident]["current_level"] = 1
    hub.deliver([(StreamEvent.INCIDENT_UPDATED, incident)])
    await hub.drain()
    hub.deliver([(StreamEvent.INCIDENT_CREATED, incident)])
    await hub.drain()
    assert received(subscription.queue) == [("incident.created", 1)]


async def test_an_incident_opened_before_subscribing_is_updated_as_usual() -> None:
    incident = uuid.uuid4()
    incidents = Incidents()
    incidents.open(incident, at=OPENED - timedelta(hours=1))
    hub = Hub(incidents.load)
    subscription = await hub.subscribe({TEAM}, since=OPENED)
    hub.deliver([(StreamEvent.INCIDENT_UPDATED, incident)])
    await hub.drain()
    assert received(subscription.queue) == [("incident.updated", 0)]
