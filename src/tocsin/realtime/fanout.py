"""Stream events between processes, through PostgreSQL's NOTIFY.

With several API processes (`serve --processes N`, or nodes behind a balancer) and separate
workers, the process that changes an incident is rarely the one holding the WebSocket of the
person watching it. Every process that changes incidents sends its events on one channel;
every API process with subscribers listens on it and hands what it hears (its own events
included) to its hub, which loads each incident and sends it to the subscribers allowed to see
it. A process nobody is watching does not listen, so it spends nothing on others' events.

Events are sent after the change is committed, so a listener always finds what it is told
about. One dedicated connection per process does both jobs (a pooled connection would be
handed to others and lose the subscription); a sender task takes whatever has queued up and
sends it in one statement. If PostgreSQL cannot be reached, a process's own subscribers still
get its events, and the connection is tried again with the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from tocsin.db import asyncpg_dsn

log = logging.getLogger(__name__)

CHANNEL = "tocsin_stream"
# One NOTIFY per event in a single statement; PostgreSQL delivers them when it commits.
_SEND = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"

RECONNECT_SECONDS = 5.0

StreamEvents = Iterable[tuple[str, uuid.UUID]]
Receiver = Callable[[list[tuple[str, uuid.UUID]]], None]


def encode(event_type: str, incident_id: uuid.UUID) -> str:
    return f"{event_type} {incident_id}"


def decode(payload: str) -> tuple[str, uuid.UUID] | None:
    event_type, _, incident = payload.partition(" ")
    try:
        return event_type, uuid.UUID(incident)
    except ValueError:
        return None


class PostgresFanOut:
    """Sends this process's stream events to every process. With `on_events`, also listens
    whenever `wants_events()` says so (the hub has subscribers), and passes every event heard
    to `on_events` (API processes; a worker only sends)."""

    def __init__(
        self,
        database_url: str,
        *,
        on_events: Receiver | None = None,
        wants_events: Callable[[], bool] = lambda: True,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._on_events = on_events
        self._wants_events = wants_events
        self._conn: Any = None
        # One operation at a time on the connection: sending, LISTEN, UNLISTEN.
        self._lock = asyncio.Lock()
        self._listening = False
        self._pending: list[tuple[str, uuid.UUID]] = []
        self._wanted = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    async def start(self) -> None:
        async with self._lock:
            await self._connect()
        self._sender = asyncio.create_task(self._send_forever(), name="tocsin-stream-fanout")

    def send(self, events: StreamEvents) -> None:
        """Queue events for every process; returns at once."""
        self._pending.extend(events)
        if self._pending:
            self._idle.clear()
            self._wanted.set()

    async def flush(self) -> None:
        """Wait until everything queued so far has been sent (tests, shutdown)."""
        if self._sender is None or self._sender.done():
            return
        idle = asyncio.ensure_future(self._idle.wait())
        await asyncio.wait({idle, self._sender}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()

    async def close(self) -> None:
        await self.flush()
        self._closing = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None

    async def reconcile(self) -> None:
        """Listen if events are wanted here, stop if not (the hub calls this as its first
        subscriber arrives and its last leaves; returns once the change is in effect)."""
        if self._on_events is None or self._closing:
            return
        async with self._lock:
            await self._connect()

    async def _connect(self) -> bool:
        """Connected, and listening exactly when wanted; the caller holds the lock."""
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self._listening = False
                self._conn = await asyncpg.connect(self._dsn, timeout=5)
            want = self._on_events is not None and self._wants_events()
            if want and not self._listening:
                await self._conn.add_listener(CHANNEL, self._heard)
                self._listening = True
            elif self._listening and not want:
                await self._conn.remove_listener(CHANNEL, self._heard)
                self._listening = False
        except Exception as exc:
            log.warning("stream fan-out: cannot reach PostgreSQL (%s); retrying later", exc)
            if self._conn is not None and not self._conn.is_closed():
                with contextlib.suppress(Exception):
                    await self._conn.close(timeout=2)
            self._conn = None
            self._listening = False
            return False
        return True

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event = decode(payload)
        if event is None:
            log.warning("stream fan-out: ignoring a malformed event %r", payload)
        elif self._on_events is not None:
            self._on_events([event])

    async def _send_forever(self) -> None:
        while not self._closing:
            # Wake now and then even when idle, to get a lost listening connection back.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), RECONNECT_SECONDS)
            self._wanted.clear()
            batch, self._pending = self._pending, []
            if not batch:
                if self._on_events is not None:
                    async with self._lock:
                        await self._connect()
                continue
            try:
                async with self._lock:
                    if not await self._connect():
                        raise ConnectionError("no connection")
                    await self._conn.execute(_SEND, CHANNEL, [encode(*e) for e in batch])
            except Exception as exc:
                if self._conn is not None and not self._conn.is_closed():
                    log.warning("stream fan-out: sending %d events failed: %s", len(batch), exc)
                # Other processes miss these; this one's subscribers still get them.
                if self._on_events is not None:
                    self._on_events(batch)
                await asyncio.sleep(0.5)
            finally:
                if not self._pending:
                    self._idle.set()
