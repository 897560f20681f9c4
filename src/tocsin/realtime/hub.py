"""In-process fan-out of incident events to WebSocket subscribers, filtered by team.

Each subscriber has a bounded queue; one that cannot keep up is dropped (its socket is closed
and the client reconnects) rather than letting memory grow or slowing ingest.

Order: events are delivered by one task, batch after batch, in the order they were announced
(or heard from PostgreSQL), and every incident is loaded after its event arrived, so no
subscriber ever sees an older state of an incident after a newer one. Announcements from two
processes can still cross (the worker's "paged" NOTIFY may overtake the ingest process's
"created"), so a subscriber also never hears of an incident opened after it subscribed by
anything but `incident.created` first: whichever event comes first is sent as the creation,
and the late `incident.created` is then dropped as already told.

Access: a change to who may see what (a key revoked, a user deactivated, a member removed, a
sign-out) is announced with `access_changed`, in every process through the same fan-out; each
subscriber's socket then checks its credential and teams again (realtime/api.py).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tocsin.realtime.events import StreamEvent

log = logging.getLogger(__name__)

# Loads what a subscriber is sent for an incident: (team_id, message body), or None if gone.
IncidentLoader = Callable[[uuid.UUID], Awaitable[tuple[uuid.UUID, dict[str, Any]] | None]]

QUEUE_SIZE = 1000
# Incidents opened since a subscriber connected whose creation it was told of; only the
# newest are remembered (an older one's late `incident.created` is long past by then).
CREATED_REMEMBERED = 10_000
# The "incident" of an access change that concerns everyone (not one user).
EVERYONE = uuid.UUID(int=0)


@dataclass(eq=False)
class Subscription:
    visible_teams: set[uuid.UUID] | None  # None: every team (admins)
    user_id: uuid.UUID | None = None
    # When it subscribed: incidents created from then on are announced as created first.
    since: datetime | None = None
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    overflowed: bool = False
    # Set when who may see what changed: the socket checks its credential again.
    recheck: asyncio.Event = field(default_factory=asyncio.Event)
    told_created: OrderedDict[uuid.UUID, None] = field(default_factory=OrderedDict)

    def may_see(self, team_id: uuid.UUID) -> bool:
        return self.visible_teams is None or team_id in self.visible_teams

    def _remember_created(self, incident_id: uuid.UUID) -> None:
        self.told_created[incident_id] = None
        if len(self.told_created) > CREATED_REMEMBERED:
            self.told_created.popitem(last=False)

    def shape(self, event_type: str, incident: dict[str, Any]) -> dict[str, Any] | None:
        """The message this subscriber gets for the event, or None when it already had it."""
        incident_id = _incident_id(incident)
        if incident_id is None:
            return {"type": event_type, "incident": incident}
        if event_type == StreamEvent.INCIDENT_CREATED:
            if incident_id in self.told_created:
                return None  # overtaken by a later event, which was sent as the creation
            self._remember_created(incident_id)
        elif incident_id not in self.told_created and self._opened_since(incident):
            event_type = StreamEvent.INCIDENT_CREATED
            self._remember_created(incident_id)
        return {"type": event_type, "incident": incident}

    def _opened_since(self, incident: dict[str, Any]) -> bool:
        if self.since is None:
            return False
        try:
            opened = datetime.fromisoformat(str(incident.get("created_at")))
        except ValueError:
            return False
        return opened.tzinfo is not None and opened >= self.since


def _incident_id(incident: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(incident.get("id")))
    except ValueError:
        return None


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
        self._backlog: list[tuple[str, uuid.UUID]] = []
        self._deliverer: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def subscribe(
        self,
        visible_teams: set[uuid.UUID] | None,
        *,
        user_id: uuid.UUID | None = None,
        since: datetime | None = None,
    ) -> Subscription:
        """A new subscriber; with a fan-out, returns once this process hears every event."""
        subscription = Subscription(visible_teams, user_id=user_id, since=since)
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

    def access_changed(self, user_id: uuid.UUID | None = None) -> None:
        """Who may see what changed (for one user, or anyone): every subscriber concerned,
        in every process, checks its credential and teams again."""
        self.announce([(StreamEvent.ACCESS_CHANGED, user_id or EVERYONE)])

    def deliver(self, events: Iterable[tuple[str, uuid.UUID]]) -> None:
        """Schedule delivery to this process's subscribers, in order; returns at once."""
        for event_type, subject in events:
            if event_type == StreamEvent.ACCESS_CHANGED:
                self._ask_recheck(subject)
            elif self._subscribers:  # nobody listening: skip loading the incident at all
                self._backlog.append((event_type, subject))
        if self._backlog and (self._deliverer is None or self._deliverer.done()):
            self._deliverer = self._spawn(self._deliver_backlog())

    def _ask_recheck(self, user_id: uuid.UUID) -> None:
        for subscription in self._subscribers:
            if user_id == EVERYONE or subscription.user_id == user_id:
                subscription.recheck.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver_backlog(self) -> None:
        # One deliverer at a time: batches go out in the order their events arrived. Within
        # a batch the incidents are loaded together, each once, after all its events came.
        while self._backlog:
            batch, self._backlog = self._backlog, []
            incident_ids = list(dict.fromkeys(incident_id for _, incident_id in batch))
            loaded = await asyncio.gather(*(self._load(i) for i in incident_ids))
            found = dict(zip(incident_ids, loaded, strict=True))
            for event_type, incident_id in batch:
                row = found[incident_id]
                if row is not None:
                    self.publish(row[0], event_type, row[1])

    async def _load(self, incident_id: uuid.UUID) -> tuple[uuid.UUID, dict[str, Any]] | None:
        try:
            return await self._load_incident(incident_id)
        except Exception:
            log.exception("loading incident %s for the stream failed", incident_id)
            return None

    def publish(self, team_id: uuid.UUID, event_type: str, incident: dict[str, Any]) -> None:
        for subscription in list(self._subscribers):
            if not subscription.may_see(team_id):
                continue
            message = subscription.shape(event_type, incident)
            if message is None:
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
