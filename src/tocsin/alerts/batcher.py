"""Group commit for ingest: concurrent requests share one transaction and one fsync.

Every request is still answered only after the transaction holding its own rows has
committed, so a 202 always means durable. If a shared transaction fails, each of its requests
is retried alone, so one bad alert cannot fail its neighbours.

SQLite allows one writer, so it gets one committer; PostgreSQL gets several, which overlap
their round trips. Identical alerts in one batch are handled in order inside it, and across
committers the dedup index decides (incidents/dedup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.alerts.ingest import (
    BatchRaceLost,
    IngestOutcome,
    PreparedAlert,
    commit_alert,
    commit_batch,
)
from tocsin.clock import Clock
from tocsin.telemetry.tracing import span

log = logging.getLogger(__name__)

# Called after each commit with what was stored; must return quickly (it runs on the
# committer's path), e.g. by handing work to another task.
OnCommitted = Callable[[list[IngestOutcome]], None]


@dataclass
class _Pending:
    prepared: PreparedAlert
    future: asyncio.Future[IngestOutcome]


class IngestBatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        committers: int,
        max_batch: int,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._committers = committers
        self._max_batch = max_batch
        self._on_committed = on_committed
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for n in range(self._committers):
            self._tasks.append(asyncio.create_task(self._run(), name=f"ingest-committer-{n}"))

    async def stop(self) -> None:
        """Stop taking batches; requests already queued are failed so clients retry them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("server shutting down"))

    async def submit(self, prepared: PreparedAlert) -> IngestOutcome:
        """Queue the alert and wait until it is committed (or failed)."""
        if not self._tasks:
            raise RuntimeError("ingest batcher is not running")
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(prepared, future))
        return await future

    def _take_batch(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        while len(batch) < self._max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            batch = self._take_batch(await self._queue.get())
            try:
                await self._commit_together(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RuntimeError("server shutting down"))
                raise
            except BatchRaceLost as exc:
                log.info("%s; storing a batch of %d alerts one by one", exc, len(batch))
                for pending in batch:
                    await self._commit_alone(pending)
            except Exception:
                log.exception(
                    "committing a batch of %d alerts failed; retrying one by one", len(batch)
                )
                for pending in batch:
                    await self._commit_alone(pending)

    async def _commit_together(self, batch: list[_Pending]) -> None:
        now = self._clock.now()
        with span("ingest.commit", {"tocsin.batch_size": len(batch)}):
            async with self._engine.begin() as conn:
                outcomes = await commit_batch(conn, [p.prepared for p in batch], now=now)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():
                pending.future.set_result(outcome)
        self._announce(outcomes)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            async with self._engine.begin() as conn:
                outcome = await commit_alert(conn, pending.prepared, now=self._clock.now())
        except Exception as exc:
            log.exception("storing an alert failed")
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        if not pending.future.done():
            pending.future.set_result(outcome)
        self._announce([outcome])

    def _announce(self, outcomes: list[IngestOutcome]) -> None:
        if self._on_committed is None:
            return
        try:
            self._on_committed(outcomes)
        except Exception:
            # The alerts are stored; a failed broadcast must not turn into a failed request.
            log.exception("announcing committed alerts failed")
