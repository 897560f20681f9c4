"""In-process fan-out of incident events to WebSocket subscribers, filtered by team.

Each subscriber has a bounded queue; one that cannot keep up is dropped (its socket is closed
and the client reconnects) rather than letting memory grow or slowing ingest.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Loads what a subscriber is sent for an incident: (team_id, message body), or None if gone.
IncidentLoader = Callable[[uuid.UUID], Awaitable[tuple[uuid.UUID, dict[str, Any]] | None]]

QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscription:
    visible_teams: set[uuid.UUID] | None  # None: every team (admins)
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    overflowed: bool = False

    def may_see(self, team_id: uuid.UUID) -> bool:
        return self.visible_teams is None or team_id in self.visible_teams


class FanOut(Protocol):
    def send(self, events: Iterable[tuple[str, uuid.UUID]]) -> None: ...

    async def reconcile(self) -> None: ...


class Hub:
    """Subscribers of this process. Events are announced after their change commits: with
    a fan-out (PostgreSQL, realtime/fanout.py) they go to every process, this one included,
    which calls `deliver` with them; without one (SQLite, one process) they go straight to
    `deliver`."""

    def __init__(self, load_incident: IncidentLoader, *, fan_out: FanOut | None = None) -> None:
        self._load_incident = load_incident
        self.fan_out = fan_out
        self._subscribers: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, visible_teams: set[uuid.UUID] | None) -> Subscription:
        """A new subscriber; with a fan-out, returns once this process hears every event."""
        subscription = Subscription(visible_teams)
        self._subscribers.add(subscription)
        if self.fan_out is not None:
            await self.fan_out.reconcile()  # no round trip once listening
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        if self.fan_out is not None and not self._subscribers:
            self._spawn(self.fan_out.reconcile())

    def announce(self, events: Iterable[tuple[str, uuid.UUID]]) -> None:
        """Tell every subscriber, in every process, of (event type, incident id) pairs;
        returns at once."""
        if self.fan_out is not None:
            self.fan_out.send(events)
        else:
            self.deliver(events)

    def deliver(self, events: Iterable[tuple[str, uuid.UUID]]) -> None:
        """Schedule delivery to this process's subscribers; returns at once."""
        if not self._subscribers:
            return  # nobody listening: skip loading the incident at all
        pending = list(events)
        if pending:
            self._spawn(self._deliver(pending))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, events: list[tuple[str, uuid.UUID]]) -> None:
        for event_type, incident_id in events:
            try:
                loaded = await self._load_incident(incident_id)
            except Exception:
                log.exception("loading incident %s for the stream failed", incident_id)
                continue
            if loaded is None:
                continue
            team_id, incident = loaded
            self.publish(team_id, {"type": event_type, "incident": incident})

    def publish(self, team_id: uuid.UUID, message: dict[str, Any]) -> None:
        for subscription in list(self._subscribers):
            if not subscription.may_see(team_id):
                continue
            try:
                subscription.queue.put_nowait(message)
            except asyncio.QueueFull:
                subscription.overflowed = True
                self._subscribers.discard(subscription)
                log.warning("dropping a stream subscriber that fell %d events behind", QUEUE_SIZE)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        for subscription in list(self._subscribers):
            subscription.overflowed = True
            self._subscribers.discard(subscription)
