"""The process's long-lived parts, built from the settings, started and stopped in order.

`tocsin serve` runs a serving runtime (the engines, the stream hub, the ingest batcher, the
payload log, the SMTP listener if configured, and the worker unless told not to); `tocsin
worker` runs a worker-only one (the engine, the worker, and on PostgreSQL a fan-out that tells
the API processes' stream subscribers what it changed). Both register the process, may send
traces, and on stop end every task they started and close every pool they opened, the last
started first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tocsin.alerts.batcher import IngestBatcher
from tocsin.alerts.ingest import SubmissionOutcome
from tocsin.clock import Clock, SystemClock
from tocsin.config import Settings
from tocsin.incidents.detail import find_incident, load_incident_detail
from tocsin.integrations.email.listener import SmtpListener, start_smtp_listener
from tocsin.integrations.intake import Intake
from tocsin.integrations.payload_log import PayloadLog
from tocsin.notifications.channels.email import close_sessions
from tocsin.notifications.channels.http import close_clients
from tocsin.operations.models import ProcessKind
from tocsin.operations.processes import ProcessHeartbeat
from tocsin.realtime.fanout import PostgresFanOut
from tocsin.realtime.hub import Hub
from tocsin.store.backend import has_single_writer, is_shared
from tocsin.store.engine import create_engine, create_session_factory, read_only
from tocsin.store.inline import inline_where_possible
from tocsin.store.quickreads import QuickReads
from tocsin.telemetry.tracing import start_tracing, stop_tracing
from tocsin.worker.context import Step, WorkerStep
from tocsin.worker.loop import POLL_SECONDS, WorkerLoop, make_context, new_worker_id


class NotServing(RuntimeError):
    """A part only a serving runtime has was asked of a worker-only one."""

    def __init__(self, part: str) -> None:
        super().__init__(f"a worker-only runtime has no {part}: it serves no HTTP")


@dataclass(frozen=True)
class WorkerOptions:
    """How this process's worker runs (`tocsin worker`'s options; defaults for `serve`)."""

    worker_id: str | None = None  # default host:pid:random
    lease: timedelta | None = None  # default WorkerContext's
    steps: Sequence[Step | WorkerStep] | None = None  # default every step
    poll_seconds: float = POLL_SECONDS


class Runtime:
    """Everything that lives as long as the process. Build it (cheap, nothing connects),
    then `await start()`, and `await stop()` once at the end."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        serve_http: bool = True,
        worker: WorkerOptions | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.serves_http = serve_http
        self.engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        self.read_engine = read_only(self.engine)  # same pool; transactions that only read
        self.sessions = create_session_factory(self.engine)
        self.read_sessions = create_session_factory(self.read_engine)
        # SQLite: the ingest committer and the in-process worker run their transactions
        # inline (tocsin.store.inline); a worker process of its own keeps the pooled engine.
        self.writer = inline_where_possible(self.engine) if serve_http else self.engine
        self.process_id = (worker.worker_id if worker else None) or new_worker_id()
        if serve_http:
            kind = ProcessKind.API_AND_WORKER if worker is not None else ProcessKind.API
        else:
            kind = ProcessKind.WORKER
        self.process = ProcessHeartbeat(
            self.writer, self.clock, kind=kind, process_id=self.process_id
        )
        self.smtp_listener: SmtpListener | None = None
        self._hub: Hub | None = None
        self._intake: Intake | None = None
        self.fan_out: PostgresFanOut | None = None
        if serve_http:
            self._build_serving()
        elif is_shared(settings.database_url):
            # The API processes' stream subscribers hear of what this worker changes (on
            # SQLite everything runs in one `serve`, whose in-process worker tells its hub).
            self.fan_out = PostgresFanOut(settings.database_url)
        self.worker: WorkerLoop | None = None
        if worker is not None:
            self.worker = self._build_worker(worker)
        self._worker_task: asyncio.Task[None] | None = None
        self._stack: AsyncExitStack | None = None
        self._ran = False

    def _build_serving(self) -> None:
        settings = self.settings
        self._hub = hub = Hub(self._load_for_stream)
        if is_shared(settings.database_url):
            # Several processes share the database: events go to every one of them.
            self.fan_out = PostgresFanOut(
                settings.database_url,
                on_events=hub.deliver,
                wants_events=lambda: hub.subscriber_count > 0,
            )
            hub.fan_out = self.fan_out

        def on_committed(outcomes: list[SubmissionOutcome]) -> None:
            hub.announce(event for outcome in outcomes for event in outcome.events)

        batcher = IngestBatcher(
            self.writer,
            self.clock,
            # SQLite has one writer. On PostgreSQL two committers overlap their round trips;
            # more make smaller batches, which cost more statements per alert (measured: 1
            # gives 283 alerts/s, 2 gives 332, 4 gives 257; docs/benchmarks.md).
            committers=1 if has_single_writer(settings.database_url) else 2,
            max_batch=settings.ingest_batch_max,
            on_committed=on_committed,
        )
        self._intake = Intake(
            settings=settings,
            clock=self.clock,
            read_engine=self.read_engine,
            quick_reads=QuickReads(self.engine),
            batcher=batcher,
            payload_log=PayloadLog(self.writer),
        )

    def _build_worker(self, options: WorkerOptions) -> WorkerLoop:
        if self._hub is not None:
            announce = self._hub.announce
        elif self.fan_out is not None:
            announce = self.fan_out.send
        else:
            announce = None
        context = make_context(
            self.writer,
            self.clock,
            self.settings,
            worker_id=self.process_id,
            lease=options.lease,
            announce=announce,
        )
        return WorkerLoop(context, steps=options.steps, poll_seconds=options.poll_seconds)

    async def _load_for_stream(
        self, incident_id: uuid.UUID
    ) -> tuple[uuid.UUID, dict[str, Any]] | None:
        async with self.read_sessions() as session:
            incident = await find_incident(session, incident_id)
            if incident is None:
                return None
            detail = await load_incident_detail(session, incident)
        return incident.team_id, detail.model_dump(mode="json")

    # What only a serving runtime has ------------------------------------------------------

    @property
    def hub(self) -> Hub:
        """The stream's subscribers in this process."""
        if self._hub is None:
            raise NotServing("stream hub")
        return self._hub

    @property
    def intake(self) -> Intake:
        """What receiving payloads needs (webhooks, the SMTP listener)."""
        if self._intake is None:
            raise NotServing("intake")
        return self._intake

    @property
    def batcher(self) -> IngestBatcher:
        return self.intake.batcher

    @property
    def payload_log(self) -> PayloadLog | None:
        return self.intake.payload_log

    # Lifecycle ----------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        """Start every part; if one fails, stop those already started and raise."""
        if self._ran:
            # Its worker, heartbeat and committers were told to stop for good.
            raise RuntimeError("a runtime starts once; build a new one")
        self._ran = True
        stack = AsyncExitStack()
        try:
            await self._start_parts(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def _start_parts(self, stack: AsyncExitStack) -> None:
        # Each part is stopped by the callback pushed right after it starts: at stop, the
        # last started stops first (the worker, whose work uses everything else).
        stack.push_async_callback(self._dispose_engines)
        stack.push_async_callback(_close_outbound_pools)
        if self._hub is not None:
            stack.push_async_callback(self._hub.close)
        if self.fan_out is not None:
            await self.fan_out.start()
            stack.push_async_callback(self.fan_out.close)
        if self._intake is not None:
            if self._intake.payload_log is not None:
                self._intake.payload_log.start()
                stack.push_async_callback(self._intake.payload_log.stop)
            self._intake.batcher.start()
            stack.push_async_callback(self._intake.batcher.stop)
            if self.settings.smtp_listen_port is not None:
                self.smtp_listener = await start_smtp_listener(self._intake, self.engine)
                stack.push_async_callback(self.smtp_listener.stop)
        if start_tracing(process_id=self.process_id, kind=self.process.kind.value):
            stack.callback(stop_tracing)
        await self.process.start()
        stack.push_async_callback(self.process.stop)
        if self.worker is not None:
            self._worker_task = asyncio.create_task(self.worker.run(), name="tocsin-worker")
            stack.push_async_callback(self._stop_worker)

    async def wait(self) -> None:
        """Until the worker has ended (after `worker.stop()`, e.g. on SIGTERM)."""
        if self._worker_task is not None:
            await asyncio.shield(self._worker_task)

    async def stop(self) -> None:
        """Stop every part started, the last started first; safe to call twice."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _stop_worker(self) -> None:
        assert self.worker is not None and self._worker_task is not None
        self.worker.stop()
        task, self._worker_task = self._worker_task, None
        await task

    async def _dispose_engines(self) -> None:
        if self._intake is not None:
            await self._intake.quick_reads.dispose()
        await self.engine.dispose()
        if self.writer is not self.engine:
            await self.writer.dispose()


async def _close_outbound_pools() -> None:
    """The notification channels' pooled HTTP clients and idle SMTP sessions."""
    close_sessions()
    await close_clients()
